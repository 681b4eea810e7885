"""Localisation scores of saliency maps against lesion masks, with a uniform-map baseline.

Two scores per phrase whose biomarker has a non-empty lesion mask in the model's view:
- pointing game: does the map's peak fall inside the mask (optionally within a tolerance)?
- energy share: the fraction of the (non-negative) map's mass that lies inside the mask.
A uniform map has no peak; its pointing-game expectation is the chance that a uniformly random
pixel hits the (tolerance-dilated) mask, and its energy share is the mask's area fraction. Both
baselines are computed per phrase from the same mask, so the comparison is paired.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage

from dataset.transforms import ScanTransform

SCORE_COLUMNS = ("pointing_hit", "pointing_uniform", "energy_share", "energy_uniform")


def upsample_map(grid_map: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of a [g, g] map to `size` (height, width), clipped at zero."""
    tensor = torch.as_tensor(grid_map, dtype=torch.float32)[None, None]
    resized = F.interpolate(tensor, size=size, mode="bilinear", align_corners=False)[0, 0]
    return resized.clamp_min(0).numpy()


def load_masks(mask_path: str | Path) -> dict[str, np.ndarray]:
    """Read a phantom mask file (one boolean array per biomarker id).

    Raises:
        FileNotFoundError: the file is missing (the message names it).
    """
    mask_path = Path(mask_path)
    if not mask_path.is_file():
        raise FileNotFoundError(f"lesion mask file not found: {mask_path} (annotation column mask_path)")
    with np.load(mask_path, allow_pickle=False) as data:
        return {key: data[key].astype(bool) for key in data.files}


def crop_mask(mask: np.ndarray, transform: ScanTransform) -> np.ndarray:
    """Bring a full-scan mask into the model's view: the same resize and centre crop as the image."""
    image = Image.fromarray(mask.astype(np.uint8) * 255, mode="L")
    # Resized with the scan's own filter (bilinear) and thresholded at half, so a lesion edge lands
    # where it lands in the scan; then the same centre crop (and padding).
    if transform.image_size and image.size != (transform.image_size[1], transform.image_size[0]):
        image = image.resize((transform.image_size[1], transform.image_size[0]), Image.BILINEAR)
    cropped = ScanTransform(transform.crop_size)(image)
    return np.asarray(cropped) > 127


def score_map(saliency: np.ndarray, mask: np.ndarray, tolerance_px: int = 0) -> dict[str, float | bool]:
    """Pointing game and energy share of one upsampled map against one mask of the same shape.

    Args:
        saliency: [H, W] non-negative map.
        mask: [H, W] boolean lesion mask, not empty.
        tolerance_px: a peak within this many pixels of the mask still counts as a hit.

    Returns:
        `pointing_hit`, `pointing_uniform`, `energy_share`, `energy_uniform`, `map_empty` (no mass:
        both map scores are NaN) and `map_flat` (constant: no peak, so `pointing_hit` is NaN; the
        energy share then equals the uniform baseline). The summary counts both apart.

    Raises:
        ValueError: shapes differ or the mask is empty.
    """
    if saliency.shape != mask.shape:
        raise ValueError(f"map shape {saliency.shape} != mask shape {mask.shape}")
    if not mask.any():
        raise ValueError("empty lesion mask: nothing to score against")
    hit_region = ndimage.binary_dilation(mask, iterations=tolerance_px) if tolerance_px > 0 else mask
    total = float(saliency.sum())
    result: dict[str, float | bool] = {
        "pointing_uniform": float(hit_region.mean()),
        "energy_uniform": float(mask.mean()),
        "map_empty": total <= 0.0,
        "map_flat": total > 0.0 and float(np.ptp(saliency)) <= 1e-9 * float(saliency.max()),
    }
    if total <= 0.0:
        result.update(pointing_hit=float("nan"), energy_share=float("nan"))
        return result
    result["energy_share"] = float(saliency[mask].sum() / total)
    if result["map_flat"]:  # argmax would pick the first pixel: a peak that is not there
        result["pointing_hit"] = float("nan")
        return result
    peak = np.unravel_index(int(np.argmax(saliency)), saliency.shape)
    result["pointing_hit"] = float(bool(hit_region[peak]))
    return result


def paired_bootstrap_ci(first: np.ndarray, second: np.ndarray, n_resamples: int = 1000,
                        seed: int = 0) -> tuple[tuple[float, float], tuple[float, float]]:
    """95% percentile-bootstrap intervals of two paired means, resampling the same phrases for both.

    Written here rather than taken from `evaluation.statistics` because saliency sits below
    evaluation in the layering; it is the plain percentile bootstrap over phrases.
    """
    if len(first) == 0:
        return (float("nan"), float("nan")), (float("nan"), float("nan"))
    picks = np.random.default_rng(seed).integers(0, len(first), size=(n_resamples, len(first)))
    intervals = [np.percentile(values[picks].mean(axis=1), [2.5, 97.5]) for values in (first, second)]
    return tuple(tuple(float(v) for v in ci) for ci in intervals)  # type: ignore[return-value]


def summarise_scores(rows: Sequence[Mapping]) -> pd.DataFrame:
    """Per-biomarker means of the scores against the uniform baseline, plus an `all` row.

    Args:
        rows: one mapping per scored phrase with `biomarker` and the `SCORE_COLUMNS`.

    Returns:
        One row per biomarker: phrase count, empty- and flat-map counts, mean scores and their
        uniform baselines over the same phrases (paired), and the energy-share ratio to the
        baseline (> 1 means more saliency on the lesion than a uniform map puts there).
    """
    columns = ["biomarker", "phrases", "empty_maps", "flat_maps", "pointing_game", "pointing_game_ci_low",
               "pointing_game_ci_high", "pointing_uniform", "pointing_uniform_ci_low", "pointing_uniform_ci_high",
               "energy_share", "energy_uniform", "energy_ratio_to_uniform"]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(list(rows))
    groups = [(name, group) for name, group in frame.groupby("biomarker", sort=True)] + [("all", frame)]
    summary = []
    for name, group in groups:
        pointed = group[group["pointing_hit"].notna()]
        weighed = group[group["energy_share"].notna()]
        energy, uniform = weighed["energy_share"].mean(), weighed["energy_uniform"].mean()
        hit_ci, uniform_ci = paired_bootstrap_ci(pointed["pointing_hit"].to_numpy(float),
                                                 pointed["pointing_uniform"].to_numpy(float))
        summary.append({
            "biomarker": name, "phrases": len(group), "empty_maps": int(group["map_empty"].astype(bool).sum()),
            "flat_maps": int((group["map_flat"] == True).sum()) if "map_flat" in group else 0,  # noqa: E712 (NaN-safe)
            "pointing_game": pointed["pointing_hit"].mean(), "pointing_game_ci_low": hit_ci[0],
            "pointing_game_ci_high": hit_ci[1], "pointing_uniform": pointed["pointing_uniform"].mean(),
            "pointing_uniform_ci_low": uniform_ci[0], "pointing_uniform_ci_high": uniform_ci[1],
            "energy_share": energy, "energy_uniform": uniform,
            "energy_ratio_to_uniform": energy / uniform if uniform and uniform > 0 else float("nan"),
        })
    return pd.DataFrame(summary, columns=columns)
