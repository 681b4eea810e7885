"""Sanity checks for saliency maps (Adebayo et al., 2018): maps must depend on the model's weights.

A map that barely changes when the vision encoder's weights are re-randomised explains the input
or the architecture, not what the model learned. `randomised_vision_copy` makes that model and
`map_similarity` measures how alike two sets of maps are.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from saliency.gradcam import vision_tower


def randomised_vision_copy(model: nn.Module, seed: int = 0) -> nn.Module:
    """A deep copy of `model` whose vision-encoder weights are redrawn (the original is untouched).

    Each parameter tensor of the vision tower is replaced by Gaussian noise with that tensor's own
    mean and standard deviation; constant tensors (normalisation scales, zero biases) and the
    batch-norm running statistics stay. Keeping each tensor's scale keeps the features alive (a
    default re-initialisation of a LeViT gives near-constant features, hence flat maps that would
    pass the check for the wrong reason) while destroying everything learned.
    """
    randomised = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in vision_tower(randomised).parameters():
            if param.numel() < 2 or not param.is_floating_point():
                continue
            noise = torch.randn(param.shape, generator=generator, dtype=torch.float32).to(param.device)
            param.copy_((noise * param.float().std() + param.float().mean()).to(param.dtype))
    return randomised.eval()


def map_similarity(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Spearman rank correlation between corresponding maps.

    Args:
        first, second: [P, ...] maps of the same shape.

    Returns:
        [P] correlations in [-1, 1]; 0 where either map is constant (no ranking to compare), 1
        where both are constant and equal.
    """
    if first.shape != second.shape:
        raise ValueError(f"map shapes differ: {first.shape} vs {second.shape}")
    result = []
    for a, b in zip(first.reshape(len(first), -1), second.reshape(len(second), -1)):
        if np.ptp(a) == 0 or np.ptp(b) == 0:
            result.append(1.0 if np.array_equal(a, b) else 0.0)
        else:
            result.append(float(spearmanr(a, b).statistic))
    return np.asarray(result)


def summarise_randomisation(similarities: list[float], model_rows: list[dict], randomised_rows: list[dict]) -> dict:
    """The randomisation check's summary over the images it ran on.

    Args:
        similarities: Spearman correlation of each phrase's map with its randomised-model map.
        model_rows: the model's localisation rows for those phrases (`score_explanation` output).
        randomised_rows: the randomised model's rows for the same phrases.

    Returns:
        Phrase count, mean and max correlation, and mean scores of both models on the phrases
        with a lesion mask, beside the uniform baseline.
    """
    def mean(rows, key):
        values = [float(r[key]) for r in rows if r.get("scored") and r.get(key) is not None]
        values = [v for v in values if not np.isnan(v)]  # empty maps have no score, flat maps no peak
        return float(np.mean(values)) if values else None

    return {
        "phrases": len(similarities),
        "mean_spearman": float(np.mean(similarities)) if similarities else None,
        "max_spearman": float(np.max(similarities)) if similarities else None,
        "model_energy_share": mean(model_rows, "energy_share"),
        "randomised_energy_share": mean(randomised_rows, "energy_share"),
        "model_pointing_game": mean(model_rows, "pointing_hit"),
        "randomised_pointing_game": mean(randomised_rows, "pointing_hit"),
        "energy_uniform": mean(model_rows, "energy_uniform"),
    }
