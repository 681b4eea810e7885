"""Supervised vision pretraining: teach a fresh vision tower the scan findings before the curriculum.

A tiny LeViT trained from random only through the language loss learns almost nothing about the
image in a CPU budget: part 1 of the curriculum is mostly non-visual and the decoder learns the
answer priors first, so the option likelihoods end up the same for every scan. A few hundred steps
of plain classification on the training split (6-way stage cross-entropy + multi-label BCE on the
evaluation biomarkers, through a temporary linear head on pooled tower features) give the tower
features that the curriculum can then read. The head is discarded; only the tower keeps the update.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import get_scheduler

from dataset.clinical import EVALUATION_BIOMARKERS, STAGES, is_present
from dataset.prefetch import prefetch
from dataset.scan_dataset import ScanDataset
from dataset.transforms import ScanTransform

logger = logging.getLogger(__name__)


class PooledHead(nn.Module):
    """Temporary classifier on a tower's token features: mean- and max-pooled, then linear.

    Max pooling matters because lesions cover a few of the 36 tokens; the mean alone dilutes them.
    """

    def __init__(self, width: int, num_stages: int, num_biomarkers: int):
        super().__init__()
        self.norm = nn.LayerNorm(2 * width)
        self.linear = nn.Linear(2 * width, num_stages + num_biomarkers)
        self.num_stages = num_stages

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = torch.cat([tokens.mean(1), tokens.amax(1)], dim=-1)
        logits = self.linear(self.norm(pooled))
        return logits[:, :self.num_stages], logits[:, self.num_stages:]


def scan_labels(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Stage indices (into `dataset.clinical.STAGES`) and biomarker presence for each row.

    Raises:
        ValueError: a row's stage is not one of `STAGES` (names the image).
    """
    stage_index = {name: i for i, name in enumerate(STAGES)}
    unknown = [(row.image_id, row.stage) for row in table.itertuples() if row.stage not in stage_index]
    if unknown:
        raise ValueError(f"vision pretraining: rows with a stage outside {list(STAGES)}: {unknown[:5]}; "
                         "fix the annotation table or set training.vision_pretraining.enabled=false")
    stages = np.array([stage_index[s] for s in table["stage"]], dtype=np.int64)
    markers = np.array([[float(is_present(row, b)) for b in EVALUATION_BIOMARKERS]
                        for row in table.to_dict("records")], dtype=np.float32)
    return stages, markers


def positive_weights(markers: np.ndarray, balance: float) -> torch.Tensor:
    """BCE weight of each biomarker's "present" term: (absent / present) ** balance.

    0 weighs both classes alike (plain BCE); 1 gives a rare finding's few positives as much weight
    in total as its negatives (the double-layer sign, 4% of scans, gets about 22).
    """
    present = markers.sum(axis=0)
    ratio = (len(markers) - present) / np.maximum(present, 1.0)
    return torch.from_numpy(np.where(present > 0, ratio, 1.0) ** balance).float()


def to_pixels(images: Sequence, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Grayscale PIL crops -> normalised [B, 3, H, W] tensors, as the LLaVA processor makes them."""
    gray = torch.from_numpy(np.stack([np.asarray(im, dtype=np.float32) / 255.0 for im in images]))
    pixels = gray[:, None].expand(-1, 3, -1, -1)
    mean_t = torch.tensor(list(mean), dtype=torch.float32)[None, :, None, None]
    std_t = torch.tensor(list(std), dtype=torch.float32)[None, :, None, None]
    return (pixels - mean_t) / std_t


def pretrain_vision_tower(tower: nn.Module, feature_layer: int, table: pd.DataFrame, transform: ScanTransform,
                          cfg: Mapping[str, Any], image_mean: Sequence[float], image_std: Sequence[float],
                          seed: int = 0, held_out: ScanDataset | None = None) -> dict[str, Any]:
    """Train `tower` in place as a scan classifier for `cfg.steps` steps; the head is thrown away.

    Args:
        tower: the VLM's vision tower (hidden states are token sequences [B, N, D]).
        feature_layer: the hidden state the VLM's adapter reads (the one trained here).
        table: annotation rows to learn from (the training split only), with `image_file`,
            `stage` and the biomarker columns.
        transform: the augmented training transform (`dataset.transforms.build_scan_transform`).
        cfg: `training.vision_pretraining` (steps, batch_size, learning_rate, weight_decay,
            warmup_steps, biomarker_weight, biomarker_balance (see `positive_weights`), log_every).
        image_mean, image_std: the processor's normalisation.
        seed: seeds batch order, augmentation and the head.
        held_out: scans of another split (centre-cropped) on which the trained head is scored once
            at the end: what the tower's features give a linear read-out, before any language.

    Returns:
        Summary: steps, wall time, (step, loss, stage accuracy) log over the training batches,
        and the head's scores on `held_out` when given.

    Raises:
        ValueError: the table is empty or has unknown stages.
    """
    if table.empty:
        raise ValueError("vision pretraining: no training rows; set training.vision_pretraining.enabled=false")
    started = time.perf_counter()
    steps, batch_size = int(cfg["steps"]), int(cfg["batch_size"])
    stages, markers = scan_labels(table)
    scans = ScanDataset(table, transform)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    param = next(tower.parameters())
    with torch.no_grad():
        was_training = tower.training
        tower.eval()
        probe = to_pixels([scans.view(0, rng).convert("L")], image_mean, image_std).to(param)
        width = tower(probe, output_hidden_states=True).hidden_states[feature_layer].shape[-1]
        tower.train(was_training)
    head = PooledHead(width, len(STAGES), len(EVALUATION_BIOMARKERS)).to(param.device)
    params = list(tower.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=float(cfg["learning_rate"]),
                                  weight_decay=float(cfg["weight_decay"]))
    scheduler = get_scheduler(str(cfg["lr_schedule"]), optimizer,
                              num_warmup_steps=int(cfg["warmup_steps"]), num_training_steps=steps)
    biomarker_weight = float(cfg["biomarker_weight"])
    pos_weight = positive_weights(markers, float(cfg["biomarker_balance"])).to(param)
    log_every = int(cfg["log_every"])
    tower.train()
    history, window = [], []
    batches = prefetch(training_batches(scans, steps, batch_size, rng, image_mean, image_std))
    for step, (index, pixels) in enumerate(tqdm(batches, total=steps, desc="vision pretraining")):
        tokens = tower(pixels.to(param), output_hidden_states=True).hidden_states[feature_layer]
        stage_logits, marker_logits = head(tokens)
        target_stage = torch.from_numpy(stages[index]).to(param.device)
        loss = nn.functional.cross_entropy(stage_logits, target_stage) + biomarker_weight * \
            nn.functional.binary_cross_entropy_with_logits(marker_logits, torch.from_numpy(markers[index]).to(param),
                                                           pos_weight=pos_weight)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        window.append((loss.item(), (stage_logits.argmax(-1) == target_stage).float().mean().item()))
        if (step + 1) % log_every == 0 or step + 1 == steps:
            mean_loss, mean_acc = np.mean(window, axis=0)
            history.append((step + 1, round(float(mean_loss), 4), round(float(mean_acc), 3)))
            logger.info("vision pretraining step %d: loss %.3f, batch stage accuracy %.2f", *history[-1])
            window.clear()
    del optimizer
    recalibrated = recalibrate_batch_norm(tower, scans, rng.permutation(len(scans)), image_mean, image_std,
                                          batch_size, rng)
    summary = {"steps": steps, "wall_time_s": round(time.perf_counter() - started, 1), "history": history,
               "train_images": len(scans), "batch_norm_recalibrated_on": recalibrated}
    if held_out is not None and len(held_out):
        summary["held_out"] = score_head(tower, feature_layer, head, held_out, image_mean, image_std, batch_size)
        logger.info("vision pretraining, held-out scans: %s", summary["held_out"])
    return summary  # the head is not part of the VLM and goes with this frame


def training_batches(scans: ScanDataset, steps: int, batch_size: int, rng: np.random.Generator,
                     image_mean: Sequence[float], image_std: Sequence[float]) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """`steps` batches of (scan indices, augmented pixels): epochs in random order, each batch whole
    (an epoch's remainder is skipped), order and augmentation drawn from `rng` in turn."""
    order, cursor = rng.permutation(len(scans)), 0
    for _ in range(steps):
        if cursor + batch_size > len(order):
            order, cursor = rng.permutation(len(scans)), 0
        index = order[cursor:cursor + batch_size]
        cursor += batch_size
        yield index, to_pixels(scans.views(index, rng), image_mean, image_std)


@torch.no_grad()
def score_head(tower: nn.Module, feature_layer: int, head: PooledHead, scans: ScanDataset,
               image_mean: Sequence[float], image_std: Sequence[float], batch_size: int) -> dict[str, Any]:
    """The pretraining head's stage accuracy and mean biomarker balanced accuracy on `scans`
    (eval mode, the transform's own view of each scan: a centre crop for an evaluation transform)."""
    stages, markers = scan_labels(scans.table)
    param = next(tower.parameters())
    tower.eval()
    stage_hits, calls = [], []
    for start in range(0, len(scans), batch_size):
        index = range(start, min(start + batch_size, len(scans)))
        pixels = to_pixels([scans.view(i) for i in index], image_mean, image_std).to(param)
        stage_logits, marker_logits = head(tower(pixels, output_hidden_states=True).hidden_states[feature_layer])
        stage_hits.append(stage_logits.argmax(-1).cpu().numpy() == stages[list(index)])
        calls.append((marker_logits > 0).cpu().numpy())
    called, truth = np.concatenate(calls), markers > 0.5
    balanced = [_balanced_accuracy(called[:, b], truth[:, b]) for b in range(truth.shape[1])]
    return {"images": len(scans), "stage_accuracy": round(float(np.concatenate(stage_hits).mean()), 3),
            "biomarker_balanced_accuracy": round(float(np.mean(balanced)), 3),
            "per_biomarker": {name: round(value, 3) for name, value in zip(EVALUATION_BIOMARKERS, balanced)}}


def _balanced_accuracy(called: np.ndarray, truth: np.ndarray) -> float:
    """Mean of the recalls of the classes (present, absent) that occur in `truth`."""
    return float(np.mean([(called[truth == value] == value).mean() for value in (True, False)
                          if (truth == value).any()]))


@torch.no_grad()
def recalibrate_batch_norm(tower: nn.Module, scans: ScanDataset, order: Sequence[int],
                           image_mean: Sequence[float], image_std: Sequence[float], batch_size: int,
                           rng: np.random.Generator, max_images: int = 1024) -> int:
    """Re-estimate the tower's batch-norm statistics for its final weights.

    The running means and variances are averages over the whole training run, while the weights
    kept moving; the frozen tower then runs in eval mode with statistics that do not fit it (after
    a short pretraining its eval-mode features hardly differ between scans). One pass over up to
    `max_images` training scans (taken in `order`, augmented from `rng`), with a cumulative
    average, gives the statistics of the weights actually kept. The tower is left in eval mode.

    Returns:
        The number of scans averaged over (0 when the tower has no batch norm).
    """
    norms = [m for m in tower.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative moving average over the pass
    tower.train()
    param = next(tower.parameters())
    used = order[:max_images]
    for start in range(0, len(used), batch_size):
        tower(to_pixels(scans.views(used[start:start + batch_size], rng), image_mean, image_std).to(param))
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    tower.eval()
    return len(used)


def maybe_pretrain_vision(cfg, model, processor, table: pd.DataFrame, resuming: bool) -> dict[str, Any] | None:
    """Run the vision pretraining stage when it applies: `training.vision_pretraining.enabled`,
    a model built from `new` (a loaded model's tower has already been trained), and no checkpoint
    to resume (its state would overwrite the tower anyway).

    Args:
        cfg: the composed `vision_language_pretraining` config.
        model: the freshly built LLaVA model (its vision tower is trained in place).
        processor: its processor (normalisation statistics).
        table: the whole annotation table; only the training split is used.
        resuming: whether the curriculum loop will resume from a checkpoint.

    Returns:
        The stage summary, or None when skipped.
    """
    from dataset.transforms import build_scan_transform
    from models.registry import resolve_model

    vp_cfg = cfg.training.vision_pretraining
    if not vp_cfg.enabled or int(vp_cfg.steps) <= 0:
        return None
    if resolve_model(cfg.pretrained_models).kind != "new" or resuming:
        return None
    from omegaconf import OmegaConf

    train = table[table["split"] == "train"] if "split" in table.columns else table
    image_size = (int(cfg.dataset.image_height), int(cfg.dataset.image_width))
    crop = int(cfg.dataset.crop_size)
    transform = build_scan_transform(crop, OmegaConf.to_container(cfg.dataset.augmentation), image_size)
    validation = table[table["split"] == "validation"] if "split" in table.columns else table.iloc[:0]
    held_out = ScanDataset(validation, build_scan_transform(crop, None, image_size)) if len(validation) else None
    image_processor = processor.image_processor
    return pretrain_vision_tower(model.model.vision_tower, int(model.config.vision_feature_layer), train, transform,
                                 vp_cfg, image_processor.image_mean, image_processor.image_std, int(cfg.seed),
                                 held_out=held_out)
