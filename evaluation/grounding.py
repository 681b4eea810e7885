"""The image-reliance gap of a closed-ended task: do the answers depend on the scan shown?

Each image's true option is scored with its own scan and with the scan of another patient (a
seeded derangement); the latter is that patient's option score, already computed. The answer loss is the true option's negative
log-probability; the gap is the mean loss with swapped scans minus the mean loss with the own
scan. A gap near zero means the answers ignore the image (they follow the answer prior alone),
however good the accuracy looks; accuracy with swapped scans shows what the prior alone earns.
The same measure is logged per curriculum module during training (`models.training.grounding`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from evaluation.answer_modes import Answer
from evaluation.tasks import ABSENT, PRESENT, Task
from models.training.grounding import swapped_order


def swapped_images(patient_ids: Sequence[str], count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows to measure and, for each, the row whose scan it is shown instead.

    Args:
        patient_ids: patient of each evaluated image.
        count: how many rows to measure (all when larger than the list).
        seed: seeds which rows and which partners.

    Returns:
        (rows, partners): index arrays; a partner is always another patient's image when the
        chosen rows hold at least two patients.
    """
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.permutation(len(patient_ids))[:count])
    shuffled = rng.permutation(len(rows))
    order = swapped_order([patient_ids[rows[i]] for i in shuffled])
    partners = np.empty(len(rows), dtype=int)
    partners[shuffled] = rows[shuffled[order]]
    return rows, partners


def image_reliance(task: Task, rows: pd.DataFrame, answers: Sequence[Answer], max_images: int | None,
                   seed: int) -> dict[str, Any]:
    """The task's image-reliance gap for one model (likelihood mode).

    An option's score depends only on the scan, the question and the option, so the scores
    "with another patient's scan" are that patient's own option scores: no second scoring pass.

    Args:
        task: the task.
        rows: the evaluated annotation rows (labels, patient ids), aligned with `answers`.
        answers: the model's likelihood answers with their option scores.
        max_images: how many images to measure (None: all).
        seed: seeds the choice of images and partners.

    Returns:
        {n_images, answer_loss, swapped_answer_loss, gap, accuracy, swapped_accuracy}.
    """
    count = len(answers) if max_images is None else min(int(max_images), len(answers))
    chosen, partners = swapped_images(rows["patient_id"].astype(str).tolist(), count, seed)
    classes = list(task.classes)
    truth = np.array([classes.index(task.label_of(rows.iloc[i])) for i in chosen])
    own = np.array([[answers[i].option_scores[c] for c in classes] for i in chosen])
    swapped = np.array([[answers[p].option_scores[c] for c in classes] for p in partners])
    own_loss = -own[np.arange(len(truth)), truth]
    swapped_loss = -swapped[np.arange(len(truth)), truth]
    return {"n_images": int(len(truth)), "answer_loss": float(own_loss.mean()),
            "swapped_answer_loss": float(swapped_loss.mean()),
            "gap": float(swapped_loss.mean() - own_loss.mean()),
            "accuracy": float((own.argmax(1) == truth).mean()),
            "swapped_accuracy": float((swapped.argmax(1) == truth).mean())}


def finding_separation(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per model, whether its presence answers tell the findings apart.

    A model's margin for one scan and biomarker is the present option's score minus the absent
    one's. `margin_correlation` is the mean Pearson correlation of these margins between every two
    biomarkers over the same scans: near 1 means every presence question gets one "how abnormal
    is this scan" reading, whichever finding it names (the tiny default with "Yes"/"No" answers
    measured 0.98-1.00); the findings' own co-occurrence in the labels sets how low it can go.

    Args:
        records: prediction records (`model`, `task`, `image_id`, `option_scores`); tasks without
            present/absent option scores (staging, generated answers) are ignored.

    Returns:
        {model: {"margin_correlation", "label_correlation", "biomarkers"}} for models with at
        least two scored biomarker tasks; `label_correlation` is the same mean over the labels.
    """
    margins: dict[str, dict[str, dict[str, float]]] = {}
    labels: dict[str, dict[str, float]] = {}
    for r in records:
        scores = r.get("option_scores") or {}
        if PRESENT not in scores or ABSENT not in scores or not str(r["task"]).startswith("biomarker_"):
            continue
        margins.setdefault(r["model"], {}).setdefault(r["task"], {})[str(r["image_id"])] = \
            float(scores[PRESENT]) - float(scores[ABSENT])
        labels.setdefault(r["task"], {})[str(r["image_id"])] = float(r.get("label") == PRESENT)
    out = {}
    for model, tasks in margins.items():
        names = sorted(tasks)
        images = sorted(set.intersection(*(set(tasks[t]) for t in names))) if names else []
        if len(names) < 2 or len(images) < 3:
            continue
        out[model] = {"margin_correlation": _mean_correlation([[tasks[t][i] for i in images] for t in names]),
                      "label_correlation": _mean_correlation([[labels[t][i] for i in images] for t in names]),
                      "biomarkers": len(names)}
    return out


def _mean_correlation(series: list[list[float]]) -> float | None:
    """Mean off-diagonal Pearson correlation of the rows (constant rows left out); None if fewer
    than two rows vary."""
    values = np.asarray(series, dtype=float)
    values = values[values.std(axis=1) > 0]
    if len(values) < 2:
        return None
    matrix = np.corrcoef(values)
    return float(matrix[~np.eye(len(values), dtype=bool)].mean())
