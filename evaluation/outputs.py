"""Writing evaluation outputs into the run folder: per-image JSONL, metrics JSON and CSV."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

PREDICTIONS_FILE = "predictions.jsonl"
METRICS_JSON = "metrics.json"
METRICS_CSV = "metrics.csv"
PER_CLASS_CSV = "per_class.csv"
COMPARISONS_CSV = "comparisons.csv"


def _clean(value: Any) -> Any:
    """JSON-safe: NaN becomes null (strict JSON has no NaN)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> Path:
    """One JSON object per line (UTF-8)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(_clean(record), ensure_ascii=False, sort_keys=True) + "\n")
    return path


def metrics_table(results: list[dict[str, Any]]) -> pd.DataFrame:
    """Long table: model, task, metric, value, ci_low, ci_high, n_images."""
    rows = [{"model": r["model"], "task": r["task"], "metric": name, **values, "n_images": r["n_images"]}
            for r in results for name, values in r["metrics"].items()]
    return pd.DataFrame(rows, columns=["model", "task", "metric", "value", "ci_low", "ci_high", "n_images"])


def per_class_table(results: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [{"model": r["model"], "task": r["task"], "class": c, **v}
            for r in results for c, v in r["per_class"].items()]
    return pd.DataFrame(rows)


def write_metrics(run_dir: Path, results: list[dict[str, Any]], comparisons: list[dict[str, Any]],
                  extra: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write metrics.json (everything), metrics.csv, per_class.csv and comparisons.csv.

    Returns:
        Name -> written path.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    payload = {**(extra or {}), "results": results, "comparisons": comparisons}
    paths = {"metrics_json": run_dir / METRICS_JSON, "metrics_csv": run_dir / METRICS_CSV,
             "per_class_csv": run_dir / PER_CLASS_CSV, "comparisons_csv": run_dir / COMPARISONS_CSV}
    paths["metrics_json"].write_text(json.dumps(_clean(payload), indent=2, sort_keys=True))
    metrics_table(results).to_csv(paths["metrics_csv"], index=False)
    per_class_table(results).to_csv(paths["per_class_csv"], index=False)
    pd.DataFrame(comparisons).to_csv(paths["comparisons_csv"], index=False)
    return paths
