"""The README figure: phantom scans in a grid, one row per stage, lesion masks outlined."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from omegaconf import DictConfig
from PIL import Image

from dataset.clinical import BIOMARKERS, STAGES, load_knowledge, stage_from_findings
from dataset.phantom.findings import sample_findings
from dataset.phantom.geometry import ScanGeometry
from dataset.phantom.render import render_scan
from dataset.runtime import prepare_run

logger = logging.getLogger(__name__)
# RPE elevation outlines the same pixels as drusen/PED and would hide them; listed, not drawn.
NOT_OUTLINED = ("rpe_elevation",)
COLOURS = {"drusen": "#ffe119", "ped": "#42d4f4", "rpe_elevation": "#ffffff", "double_layer_sign": "#f58231",
           "rpe_atrophy": "#f032e6", "hypertransmission": "#3cb44b", "hrf": "#e6194b", "shrm": "#ffd8b1",
           "fibrosis": "#911eb4", "srf": "#4363d8", "irf": "#00ff99", "other_pathology": "#bfef45"}


def _to_palette(image: Image.Image, grey_levels: int) -> Image.Image:
    """Map the figure onto a fixed palette of `grey_levels` greys plus the outline colours: few
    greys keep the speckled scans small, and the outlines keep their exact colours (an adaptive
    palette would spend itself on the greys and merge them)."""
    greys = np.linspace(0, 255, grey_levels).round().astype(int)
    colours = [tuple(int(c[i: i + 2], 16) for i in (1, 3, 5)) for c in COLOURS.values()]
    entries = [(g, g, g) for g in greys] + colours
    palette = Image.new("P", (1, 1))
    palette.putpalette([v for entry in entries for v in entry] + [0] * 3 * (256 - len(entries)))
    return image.quantize(palette=palette, dither=Image.Dither.NONE)


def render_examples(stage: str, count: int, geom: ScanGeometry, seed: int, candidates: int = 12):
    """`count` rendered scans of `stage` with their findings (deterministic for `seed`).

    Out of `candidates` draws, scans are picked greedily to show as many different biomarkers
    as possible, so the figure displays every lesion type.
    """
    draws = []
    for index in range(candidates):
        rng = np.random.default_rng([seed, STAGES.index(stage), index])
        draws.append((sample_findings(stage, rng), rng))
    chosen, shown = [], set()
    for _ in range(min(count, candidates)):
        def novelty(i):
            present = {b for b in BIOMARKERS if draws[i][0][b]}
            return len(present - shown), -i
        best = max((i for i in range(candidates) if i not in chosen), key=novelty)
        chosen.append(best)
        shown |= {b for b in BIOMARKERS if draws[best][0][b]}
    examples = []
    for column, index in enumerate(chosen):
        findings, rng = draws[index]
        eye = "left" if column % 2 else "right"
        examples.append((findings, eye, render_scan(findings, eye, 78.0, geom, rng)))
    return examples


def plot_phantom_grid(cfg: DictConfig) -> Path:
    """Draw the phantom grid figure and save it (palette PNG, small enough to commit).

    Args:
        cfg: composed `configs/plot_phantom_examples.yaml`; uses `figure.*` and the dataset size.

    Returns:
        The written figure path.
    """
    prepare_run(cfg)
    settings = cfg.figure
    geom = ScanGeometry.from_size(int(cfg.dataset.image_height), int(cfg.dataset.image_width),
                                  cfg.dataset.phantom.get("visible_width"))
    count = int(settings.scans_per_stage)
    knowledge = load_knowledge()
    # A bare Figure (no pyplot) renders with Agg and leaves the caller's backend alone.
    fig = Figure(figsize=(2.3 * count, 2.05 * len(STAGES) + 0.9))
    axes = fig.subplots(len(STAGES), count, squeeze=False)
    for row, stage in enumerate(STAGES):
        examples = render_examples(stage, count, geom, int(settings.seed))
        for column, (findings, eye, scan) in enumerate(examples):
            axis = axes[row, column]
            axis.imshow(scan.image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            for biomarker, mask in scan.masks.items():
                if mask.any() and biomarker not in NOT_OUTLINED:
                    axis.contour(mask.astype(np.float32), levels=[0.5], colors=[COLOURS[biomarker]],
                                 linewidths=0.9)
            nasal = "nasal" if eye == "right" else "temporal"
            axis.set_title(f"{eye} eye, right side {nasal}", fontsize=6, pad=2)
            axis.set_xticks([])
            axis.set_yticks([])
            if column == 0:
                axis.set_ylabel(knowledge.stage(stage_from_findings(findings)).name, fontsize=8)
    handles = [Line2D([0], [0], color=COLOURS[b], lw=2, label=knowledge.biomarkers[b].name)
               for b in BIOMARKERS if b not in NOT_OUTLINED]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=6.5, frameon=False)
    fig.suptitle("Synthetic OCT phantom: one row per stage, lesion masks outlined", fontsize=9)
    fig.tight_layout(rect=(0, 0.07, 1, 0.98), h_pad=0.4, w_pad=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=int(settings.dpi))
    output = Path(settings.output_file)
    output.parent.mkdir(parents=True, exist_ok=True)
    _to_palette(Image.open(buffer).convert("RGB"), int(settings.grey_levels)).save(output, optimize=True)
    logger.info("phantom grid figure: %s (%.0f KB)", output, output.stat().st_size / 1024)
    return output
