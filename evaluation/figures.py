"""Evaluation figures: confusion matrices, F1 bars with CIs across models, a per-biomarker radar.

Drawn with matplotlib's Agg backend (no display needed) into `<run_dir>/figures/`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from evaluation.scoring import MAJORITY  # noqa: E402

logger = logging.getLogger(__name__)
F1_METRIC = "reference_f1"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def confusion_figure(result: dict[str, Any], path: Path) -> Path:
    """Confusion matrix of one model on one task: rows are the true classes, columns the predicted
    ones plus a last column of invalid answers; cells show counts, shaded by share of the row."""
    columns = result["confusion"]["classes"]
    rows = columns[:-1]
    counts = np.asarray(result["confusion"]["counts"], dtype=float)  # [K, K+1]
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(0.9 * len(columns) + 2.5, 0.8 * len(rows) + 2))
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i in range(len(rows)):
        for j in range(len(columns)):
            ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center",
                    color="white" if shares[i, j] > 0.6 else "black", fontsize=9)
    ax.set_xticks(range(len(columns)), columns, rotation=40, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("predicted (last column: invalid answer)")
    ax.set_ylabel("true")
    ax.set_title(f"{result['task']}: {result['model']} (n={result['n_images']})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def f1_bars_figure(results: Sequence[dict[str, Any]], path: Path, metric: str = F1_METRIC) -> Path:
    """Grouped bars of `metric` per task, one bar per model, with patient-bootstrap 95% CIs."""
    tasks = list(dict.fromkeys(r["task"] for r in results))
    models = list(dict.fromkeys(r["model"] for r in results))
    lookup = {(r["model"], r["task"]): r["metrics"][metric] for r in results}
    width = 0.8 / max(len(models), 1)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.0 * len(tasks) * max(len(models), 2) * 0.5 + 2), 4))
    x = np.arange(len(tasks))
    for k, model in enumerate(models):
        values = np.array([lookup.get((model, t), {}).get("value", np.nan) for t in tasks], dtype=float)
        low = np.array([lookup.get((model, t), {}).get("ci_low", np.nan) for t in tasks], dtype=float)
        high = np.array([lookup.get((model, t), {}).get("ci_high", np.nan) for t in tasks], dtype=float)
        errors = np.nan_to_num(np.vstack([values - low, high - values]), nan=0.0).clip(min=0)
        ax.bar(x + (k - (len(models) - 1) / 2) * width, values, width, yerr=errors, capsize=3, label=model)
    ax.set_xticks(x, [t.removeprefix("biomarker_") for t in tasks], rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(f"{metric} (95% CI, patient bootstrap)")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def radar_figure(results: Sequence[dict[str, Any]], path: Path, metric: str = F1_METRIC) -> Path | None:
    """Per-biomarker radar chart of `metric`, one polygon per model; None without biomarker tasks."""
    biomarker_results = [r for r in results if r["task"].startswith("biomarker_")]
    tasks = list(dict.fromkeys(r["task"] for r in biomarker_results))
    if len(tasks) < 3:
        logger.info("radar chart needs at least three biomarker tasks; skipped")
        return None
    models = list(dict.fromkeys(r["model"] for r in biomarker_results))
    lookup = {(r["model"], r["task"]): r["metrics"][metric]["value"] for r in biomarker_results}
    angles = np.linspace(0, 2 * np.pi, len(tasks), endpoint=False)
    closed = np.append(angles, angles[0])
    fig, ax = plt.subplots(figsize=(6, 6.6), subplot_kw={"projection": "polar"})
    for model in models:
        values = np.array([lookup.get((model, t), np.nan) for t in tasks], dtype=float)
        values = np.append(values, values[0])
        ax.plot(closed, values, label=model)
        ax.fill(closed, np.nan_to_num(values), alpha=0.1)
    ax.set_xticks(angles, [t.removeprefix("biomarker_") for t in tasks], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_rlabel_position(180 / len(tasks))  # radial ticks between the first two spokes
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title(f"biomarker detection ({metric})", pad=18)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=min(len(models), 3))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_figures(run_dir: Path, results: Sequence[dict[str, Any]]) -> list[Path]:
    """Every figure for a set of results, in `<run_dir>/figures/`.

    Returns:
        The written image files.
    """
    folder = run_dir / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    # The majority-class baseline's matrix is one full column; it appears in the bars and radar only.
    written = [confusion_figure(r, folder / f"confusion_{_safe(r['task'])}_{_safe(r['model'])}.png")
               for r in results if r["model"] != MAJORITY]
    if results:
        written.append(f1_bars_figure(results, folder / "f1_bars.png"))
        radar = radar_figure(results, folder / "biomarker_radar.png")
        if radar:
            written.append(radar)
    return written
