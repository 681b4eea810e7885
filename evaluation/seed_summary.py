"""Mean and spread over training seeds: what `make seeds` reports instead of one lucky run.

Reads `<seeds_dir>/seed_<s>/closed_ended_<group>/metrics.json` (and `open_ended*/metrics.json`, whose
tasks become `report_<task>`) of every finished seed, counts per model the biomarkers whose macro-F1
beats the majority class with non-overlapping CIs (task `biomarkers`, metric `above_majority`), and writes
`seed_summary.csv` (one row per model, task and metric: mean, standard deviation, min, max,
number of seeds) and `seed_summary.md` beside them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from dataset.runtime import RESOLVED_CONFIG
from evaluation.scoring import biomarkers_above_majority

logger = logging.getLogger(__name__)

METRICS = ("accuracy", "macro_f1")


def collect_seed_metrics(seeds_dir: str | Path) -> pd.DataFrame:
    """One row per seed, model, task and metric from the seeds' closed-ended runs.

    Raises:
        FileNotFoundError: no finished seed under `seeds_dir`.
    """
    rows = []
    runs = sorted(Path(seeds_dir).glob("seed_*/closed_ended_*/metrics.json"))
    runs += sorted(Path(seeds_dir).glob("seed_*/open_ended*/metrics.json"))
    for metrics_file in runs:
        seed = metrics_file.parent.parent.name.removeprefix("seed_")
        metrics = json.loads(metrics_file.read_text())
        split = _evaluated_split(metrics_file.parent)
        # An open-ended run's tasks are read from reports: `report_<task>`, with how often none was stated.
        reports = metrics_file.parent.name.startswith("open_ended")
        prefix, names = ("report_", (*METRICS, "invalid_rate")) if reports else ("", METRICS)
        for result in metrics["results"]:
            rows += [{"seed": seed, "split": split, "model": result["model"], "task": prefix + result["task"],
                      "metric": name, "value": result["metrics"][name]["value"]} for name in names]
        if not reports:
            rows += _biomarkers_above_majority(metrics, seed, split)
        rows += [{"seed": seed, "split": split, "model": r["model"], "task": "reports", "metric": r["metric"],
                  "value": r["value"]} for r in metrics.get("report_accuracy") or []]
        for model, tasks in (metrics.get("grounding") or {}).items():
            rows += [{"seed": seed, "split": split, "model": model, "task": task, "metric": "grounding_gap",
                      "value": g["gap"]}
                     for task, g in tasks.items()]
    if not rows:
        raise FileNotFoundError(f"no seed_*/closed_ended_*/metrics.json under {seeds_dir}; run `make seeds` first")
    return pd.DataFrame(rows)


def _biomarkers_above_majority(metrics: dict, seed: str, split: str | None) -> list[dict]:
    """Per model of a biomarker run: on how many biomarkers its macro-F1 beats the majority class's
    with non-overlapping 95% CIs (the issue's bar: at least 8 of 10 on every seed)."""
    return [{"seed": seed, "split": split, "model": model, "task": "biomarkers", "metric": "above_majority",
             "value": len(tasks)} for model, tasks in biomarkers_above_majority(metrics["results"]).items()]


def _evaluated_split(run_dir: Path) -> str | None:
    """The split an evaluation run scored, from its resolved config (None if it has none)."""
    config = run_dir / RESOLVED_CONFIG
    return str(OmegaConf.load(config).evaluation.split) if config.is_file() else None


def summarise_seeds(seeds_dir: str | Path) -> pd.DataFrame:
    """Write `seed_summary.csv` and `seed_summary.md` in `seeds_dir`; return the summary table."""
    frame = collect_seed_metrics(seeds_dir)
    summary = (frame.groupby(["model", "task", "metric"], sort=False)["value"]
               .agg(mean="mean", std="std", min="min", max="max", seeds="count").reset_index())
    seeds_dir = Path(seeds_dir)
    summary.to_csv(seeds_dir / "seed_summary.csv", index=False)
    splits = ", ".join(sorted(set(frame["split"].dropna())))
    lines = [f"# Results over {frame['seed'].nunique()} training seeds" + (f" ({splits} split)" if splits else ""), "",
             "| model | task | metric | mean | std | min | max | seeds |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r.model} | {r.task} | {r.metric} | {r.mean:.3f} | {r.std:.3f} | {r.min:.3f} | {r.max:.3f} | "
              f"{r.seeds} |" for r in summary.fillna(0.0).itertuples()]
    (seeds_dir / "seed_summary.md").write_text("\n".join(lines) + "\n")
    logger.info("wrote %s", seeds_dir / "seed_summary.md")
    return summary
