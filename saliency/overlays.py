"""Overlay figures: one per phrase (map shaded and outlined over the scan) and a composite with
the report text beside the panels."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers or in tests
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from saliency.phrases import Phrase  # noqa: E402


@dataclass(frozen=True)
class OverlayStyle:
    """How overlays look (the task config's `overlay` block).

    Attributes:
        colormap: matplotlib colormap for the shading.
        alpha: peak opacity of the shading; weak saliency fades out.
        outline_level: the outline is drawn where the map reaches this fraction of its peak.
        mask_color: colour of the lesion-mask outline (when a mask is given); None hides it.
        dpi: output resolution.
    """

    colormap: str = "inferno"
    alpha: float = 0.6
    outline_level: float = 0.5
    mask_color: str | None = "lime"
    dpi: int = 120


def _normalise(saliency: np.ndarray) -> np.ndarray:
    peak = float(saliency.max()) if saliency.size else 0.0
    return saliency / peak if peak > 0 else np.zeros_like(saliency)


def draw_overlay(ax, image: np.ndarray, saliency: np.ndarray, style: OverlayStyle,
                 mask: np.ndarray | None = None, title: str | None = None) -> None:
    """Draw the scan, the map shaded (opacity follows the map) and outlined, and the lesion mask.

    Args:
        ax: matplotlib axes.
        image: [H, W] grayscale scan (the model's view).
        saliency: [H, W] non-negative map, already upsampled to the image.
        style: colours and levels.
        mask: optional [H, W] boolean lesion mask, outlined in `style.mask_color`.
        title: panel title.
    """
    norm = _normalise(saliency)
    colours = plt.get_cmap(style.colormap)(norm)
    colours[..., 3] = style.alpha * norm
    ax.imshow(image, cmap="gray", vmin=0, vmax=255)
    ax.imshow(colours)
    if norm.max() > 0 and 0 < style.outline_level < 1:
        ax.contour(norm, levels=[style.outline_level], colors="cyan", linewidths=1.2)
    if mask is not None and style.mask_color and mask.any() and not mask.all():
        ax.contour(mask.astype(float), levels=[0.5], colors=style.mask_color, linewidths=1.0, linestyles="dashed")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=8)


def phrase_title(phrase: Phrase) -> str:
    """Panel title: the phrase, its biomarker and whether the report negates it."""
    negation = " (negated)" if phrase.negated else ""
    return f"\"{phrase.text}\" -> {phrase.biomarker}{negation}"


def save_phrase_overlay(path: Path, image: np.ndarray, saliency: np.ndarray, phrase: Phrase,
                        style: OverlayStyle, mask: np.ndarray | None = None) -> Path:
    """Write one phrase's overlay PNG."""
    fig, ax = plt.subplots(figsize=(3.2, 3.4))
    try:
        draw_overlay(ax, image, saliency, style, mask, phrase_title(phrase))
        fig.tight_layout()
        fig.savefig(path, dpi=style.dpi)
    finally:
        plt.close(fig)
    return path


def save_composite(path: Path, image: np.ndarray, report: str, phrases: Sequence[Phrase],
                   saliencies: Sequence[np.ndarray], style: OverlayStyle,
                   masks: Sequence[np.ndarray | None] | None = None, title: str = "") -> Path:
    """Write the composite: the scan, one overlay per phrase, and the report text beside them.

    Args:
        path: PNG to write.
        image: [H, W] scan.
        report: the report the maps explain.
        phrases: the phrases, in the order of `saliencies`.
        saliencies: [H, W] maps, one per phrase.
        style: colours and levels.
        masks: optional lesion mask per phrase.
        title: figure title (e.g. the image id).
    """
    masks = list(masks) if masks is not None else [None] * len(phrases)
    panels = 1 + len(phrases)
    columns = min(4, panels)
    rows = -(-panels // columns)
    fig = plt.figure(figsize=(2.6 * columns + 3.6, 2.8 * rows + 0.4))
    grid = fig.add_gridspec(rows, columns + 1, width_ratios=[1.0] * columns + [1.4])
    try:
        ax = fig.add_subplot(grid[0, 0])
        ax.imshow(image, cmap="gray", vmin=0, vmax=255)
        ax.set_axis_off()
        ax.set_title("scan", fontsize=8)
        for k, (phrase, saliency, mask) in enumerate(zip(phrases, saliencies, masks), start=1):
            ax = fig.add_subplot(grid[k // columns, k % columns])
            draw_overlay(ax, image, saliency, style, mask, phrase_title(phrase))
        text_ax = fig.add_subplot(grid[:, columns])
        text_ax.set_axis_off()
        wrapped = "\n".join(textwrap.fill(part, 42) for part in report.splitlines() or [""])
        text_ax.text(0.0, 1.0, "Report\n\n" + wrapped, va="top", ha="left", fontsize=8, family="monospace",
                     transform=text_ax.transAxes)
        if title:
            fig.suptitle(title, fontsize=9)
        fig.tight_layout()
        fig.savefig(path, dpi=style.dpi)
    finally:
        plt.close(fig)
    return path
