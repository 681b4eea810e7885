"""The image-reliance gap of a closed-ended task: do the answers depend on the scan shown?

Each image's true option is scored twice in likelihood mode: with its own scan and with the scan
of another patient (a seeded derangement). The answer loss is the true option's negative
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
from PIL import Image

from evaluation.answer_modes import Answer
from evaluation.tasks import Task
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


def image_reliance(answerer, task: Task, images: Sequence[Image.Image], rows: pd.DataFrame,
                   answers: Sequence[Answer], max_images: int | None, seed: int) -> dict[str, Any]:
    """The task's image-reliance gap for one model (likelihood mode).

    Args:
        answerer: the model (must score options).
        task: the task.
        images: the evaluated scans, aligned with `rows` and `answers`.
        rows: the evaluated annotation rows (labels, patient ids).
        answers: the model's likelihood answers with their own scans (their option scores are reused).
        max_images: how many images to measure (None: all).
        seed: seeds the choice of images and partners.

    Returns:
        {n_images, answer_loss, swapped_answer_loss, gap, accuracy, swapped_accuracy}.
    """
    count = len(images) if max_images is None else min(int(max_images), len(images))
    chosen, partners = swapped_images(rows["patient_id"].astype(str).tolist(), count, seed)
    classes = list(task.classes)
    labels = [task.label_of(rows.iloc[i]) for i in chosen]
    own = np.array([[answers[i].option_scores[c] for c in classes] for i in chosen])
    swapped = answerer.score_options([images[p] for p in partners], task.question,
                                     [task.option_texts[c] for c in classes], end_of_turn=task.complete_answer)
    truth = np.array([classes.index(label) for label in labels])
    own_loss = -own[np.arange(len(truth)), truth]
    swapped_loss = -np.asarray(swapped)[np.arange(len(truth)), truth]
    return {"n_images": int(len(truth)), "answer_loss": float(own_loss.mean()),
            "swapped_answer_loss": float(swapped_loss.mean()),
            "gap": float(swapped_loss.mean() - own_loss.mean()),
            "accuracy": float((own.argmax(1) == truth).mean()),
            "swapped_accuracy": float((np.asarray(swapped).argmax(1) == truth).mean())}
