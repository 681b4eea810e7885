"""The image-reliance gap: how much a model's answers depend on the scan it is shown.

A model that reads the image predicts an answer better from its own scan than from another
patient's. The gap is measured on held-out examples as the answer loss (mean negative
log-likelihood per answer token) with images swapped across the batch minus the loss with each
example's own image. About zero means the answers ignore the image, whatever the loss itself says
(a model can learn a curriculum's answer prior and nothing else); a clearly positive gap means the
image is in the words. Training logs it per curriculum module at every evaluation step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from models.training.collate import IGNORE_INDEX


def swapped_order(image_ids: Sequence[str]) -> list[int]:
    """A permutation of the batch in which every example gets another scan's image.

    Rotates the batch by one position, then swaps any example that would keep a picture of its
    own scan (a scan asked several questions) with one whose image differs. Deterministic.

    Returns:
        Index of the image each example receives; the identity for a batch of one scan.
    """
    n = len(image_ids)
    order = [(i + 1) % n for i in range(n)]
    for i in range(n):
        if image_ids[order[i]] != image_ids[i]:
            continue
        for j in range(n):  # swap targets with j when both then see a foreign scan
            if image_ids[order[j]] != image_ids[i] and image_ids[order[i]] != image_ids[j]:
                order[i], order[j] = order[j], order[i]
                break
    return order


def answer_token_losses(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed answer-token negative log-likelihood and answer-token count per row.

    Args:
        logits: [B, T, V] model outputs.
        labels: [B, T] targets, `IGNORE_INDEX` outside the answer (as `QACollator` makes them).

    Returns:
        ([B] summed loss, [B] token count), in float64.
    """
    targets = labels[:, 1:]  # position t predicts token t + 1
    mask = targets != IGNORE_INDEX
    log_probs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    token_nll = -log_probs.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (token_nll * mask).sum(dim=1).double(), mask.sum(dim=1).double()


@dataclass
class GroundingTally:
    """Running answer-loss sums with own and swapped images, per curriculum module.

    Modules are fixed up front (`modules`), so tallies of several processes add up tensor-wise.
    """

    modules: list[str]
    device: torch.device | str = "cpu"
    sums: torch.Tensor = field(init=False)  # [M, 3]: own loss, swapped loss, tokens

    def __post_init__(self) -> None:
        self.sums = torch.zeros(len(self.modules), 3, dtype=torch.float64, device=self.device)

    def add(self, modules: Sequence[str], own: torch.Tensor, swapped: torch.Tensor, tokens: torch.Tensor) -> None:
        """Add one batch: per-row summed losses with own and swapped images, and token counts."""
        index = torch.tensor([self.modules.index(m) for m in modules], device=self.sums.device)
        self.sums.index_add_(0, index, torch.stack([own, swapped, tokens], dim=1).to(self.sums))

    def summary(self) -> dict[str, dict[str, float]]:
        """module -> {loss, swapped_loss, gap} (per answer token), plus `all` over every module
        (NaN when nothing was scored)."""
        rows = {name: self.sums[i] for i, name in enumerate(self.modules)}
        rows["all"] = self.sums.sum(dim=0)
        return {name: _losses(row) for name, row in rows.items() if name == "all" or row[2] > 0}


def _losses(row: torch.Tensor) -> dict[str, float]:
    own, swapped, tokens = (float(v) for v in row)
    if tokens <= 0:
        return {"loss": math.nan, "swapped_loss": math.nan, "gap": math.nan}
    return {"loss": own / tokens, "swapped_loss": swapped / tokens, "gap": (swapped - own) / tokens}


@torch.no_grad()
def tally_batch(model, batch: Mapping[str, torch.Tensor], image_ids: Sequence[str], modules: Sequence[str],
                tally: GroundingTally) -> None:
    """Score one collated batch with its own images and with swapped ones; add both to `tally`."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    own, tokens = answer_token_losses(model(**inputs).logits, batch["labels"])
    order = torch.tensor(swapped_order(image_ids), device=batch["pixel_values"].device)
    swapped_inputs = {**inputs, "pixel_values": batch["pixel_values"][order]}
    swapped, _ = answer_token_losses(model(**swapped_inputs).logits, batch["labels"])
    tally.add(modules, own, swapped, tokens)
