"""From per-image predictions to metrics: every model on every task, a majority-class baseline and
pairwise McNemar comparisons (Holm-corrected within each task)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from typing import Any

import pandas as pd
from statsmodels.stats.multitest import multipletests

from evaluation.statistics import confusion, holm_correct, mcnemar_paired, metrics_with_intervals, per_class
from evaluation.tasks import Task

logger = logging.getLogger(__name__)
MAJORITY = "majority_class"
# Suffix of a model's calibrated answers, scored beside its raw ones (`evaluation.closed_ended`).
CALIBRATED_SUFFIX = "+calibrated"
PREDICTION_COLUMNS = ("model", "task", "image_id", "patient_id", "label", "prediction")


def majority_predictions(task: Task, test: pd.DataFrame, reference: pd.DataFrame | None) -> pd.DataFrame:
    """A baseline that always answers the most common class of `reference` (the training split;
    the test split itself when no training rows are given).

    Returns:
        Prediction rows (PREDICTION_COLUMNS) for every test image.
    """
    source = reference if reference is not None and len(reference) else test
    counts = pd.Series([task.label_of(row) for _, row in source.iterrows()]).value_counts()
    # Ties go to the class listed first in the task, so the baseline is deterministic.
    majority = max(task.classes, key=lambda c: (counts.get(c, 0), -task.classes.index(c)))
    return pd.DataFrame({"model": MAJORITY, "task": task.name, "image_id": test["image_id"].astype(str),
                         "patient_id": test["patient_id"].astype(str),
                         "label": [task.label_of(row) for _, row in test.iterrows()], "prediction": majority})


def score_task(rows: pd.DataFrame, task: Task, n_resamples: int = 1000,
               seed: int = 0) -> list[dict[str, Any]]:
    """Metrics with patient-clustered CIs, per-class scores and the confusion matrix of each model.

    Args:
        rows: prediction rows of this task (PREDICTION_COLUMNS; prediction None = invalid).

    Returns:
        One result dict per model, in first-seen order.
    """
    results = []
    for model, group in rows.groupby("model", sort=False):
        labels = group["label"].tolist()
        preds = [None if p is None or (isinstance(p, float) and p != p) else p for p in group["prediction"]]
        metrics = metrics_with_intervals(labels, preds, group["patient_id"].tolist(), task.classes,
                                         task.positive_classes, n_resamples=n_resamples, seed=seed)
        results.append({
            "model": model, "task": task.name, "n_images": len(group),
            "n_patients": int(group["patient_id"].nunique()), "metrics": metrics,
            "per_class": per_class(labels, preds, task.classes),
            "confusion": {"classes": [*task.classes, "invalid"],
                          "counts": confusion(labels, preds, task.classes).tolist()},
        })
    return results


def compare_models(rows: pd.DataFrame, task: Task) -> list[dict[str, Any]]:
    """Pairwise McNemar tests of every two models on the images both answered, Holm-corrected."""
    correct = {model: dict(zip(group["image_id"], group["label"] == group["prediction"]))
               for model, group in rows.groupby("model", sort=False)}
    tests = [mcnemar_paired(correct[a], correct[b], a, b) for a, b in itertools.combinations(correct, 2)]
    return [{"task": task.name, **r.__dict__} for r in holm_correct(tests)]


def score_all(rows: pd.DataFrame, tasks: Sequence[Task], n_resamples: int = 1000,
              seed: int = 0) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Score every task: (results, comparisons). Each comparison carries `p_holm` (Holm across the
    model pairs of its task) and `p_holm_all_tasks` (Holm across all comparisons of the run)."""
    results, comparisons = [], []
    for task in tasks:
        task_rows = rows[rows["task"] == task.name]
        if task_rows.empty:
            logger.warning("no predictions for task %s", task.name)
            continue
        results += score_task(task_rows, task, n_resamples, seed)
        comparisons += compare_models(task_rows, task)
    if comparisons:
        # Also corrected across every comparison of the run (e.g. the ten biomarker tasks as one family).
        _, adjusted, _, _ = multipletests([c["p_value"] for c in comparisons], method="holm")
        for comparison, p in zip(comparisons, adjusted):
            comparison["p_holm_all_tasks"] = float(p)
    return results, comparisons


def biomarkers_above_majority(results: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """Per model (the majority class aside), the biomarker tasks whose macro-F1 beats the majority
    class's with non-overlapping 95% CIs, from a run's `metrics.json` results."""
    majority = {r["task"]: r["metrics"]["macro_f1"] for r in results
                if r["model"] == MAJORITY and r["task"].startswith("biomarker_")}
    above: dict[str, list[str]] = {}
    for r in results:
        if r["model"] != MAJORITY and r["task"] in majority:
            beats = r["metrics"]["macro_f1"]["ci_low"] > majority[r["task"]]["ci_high"]
            above.setdefault(r["model"], []).extend([r["task"]] if beats else [])
    return above
