"""Evaluation statistics (CLINICAL.md "Evaluation statistics the field expects").

Point metrics come from scikit-learn, the patient-clustered bootstrap from scipy, McNemar and Holm
from statsmodels. An invalid (unparseable) answer is the prediction `INVALID`, which belongs to no
class: it is wrong for accuracy and a miss (false negative of the true class) for every F1.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import bootstrap
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

logger = logging.getLogger(__name__)

INVALID = "invalid"
# Below this many discordant pairs McNemar uses the exact binomial test; the chi-square
# approximation is poor there and reports p = 0 when both models agree everywhere.
EXACT_BELOW_DISCORDANT = 25


def _as_predictions(predictions: Sequence[str | None]) -> np.ndarray:
    return np.array([INVALID if p is None else str(p) for p in predictions], dtype=object)


def accuracy(labels, predictions) -> float:
    """Share of images answered correctly (invalid answers are wrong)."""
    return float(accuracy_score(np.asarray(labels, dtype=object), _as_predictions(predictions)))


def macro_f1(labels, predictions, classes: Sequence[str]) -> float:
    """Unweighted mean of the per-class F1 over `classes` (absent classes score 0)."""
    return float(f1_score(np.asarray(labels, dtype=object), _as_predictions(predictions),
                          labels=list(classes), average="macro", zero_division=0))


def reference_micro_f1(labels, predictions, positive_classes: Sequence[str]) -> float:
    """The reference paper's headline F1: micro-averaged over the positive classes, with an
    invalid answer counted as a miss (it adds a false negative and no true positive)."""
    return float(f1_score(np.asarray(labels, dtype=object), _as_predictions(predictions),
                          labels=list(positive_classes), average="micro", zero_division=0))


def invalid_rate(predictions) -> float:
    """Share of answers that could not be mapped to a class."""
    preds = _as_predictions(predictions)
    return float(np.mean(preds == INVALID)) if len(preds) else 0.0


def per_class(labels, predictions, classes: Sequence[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support of each class."""
    p, r, f, s = precision_recall_fscore_support(np.asarray(labels, dtype=object),
                                                 _as_predictions(predictions), labels=list(classes),
                                                 zero_division=0)
    return {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, c in enumerate(classes)}


def confusion(labels, predictions, classes: Sequence[str]) -> np.ndarray:
    """Confusion counts [true class, predicted class]; the last column counts invalid answers."""
    return confusion_matrix(np.asarray(labels, dtype=object), _as_predictions(predictions),
                            labels=[*classes, INVALID])[: len(classes)]


def point_metrics(labels, predictions, classes: Sequence[str],
                  positive_classes: Sequence[str]) -> dict[str, float]:
    """The headline scalar metrics of one model on one task."""
    return {
        "accuracy": accuracy(labels, predictions),
        "macro_f1": macro_f1(labels, predictions, classes),
        "reference_f1": reference_micro_f1(labels, predictions, positive_classes),
        "invalid_rate": invalid_rate(predictions),
    }


@dataclass(frozen=True)
class Interval:
    """A bootstrap percentile interval and the replicates it came from."""

    low: float | np.ndarray
    high: float | np.ndarray
    replicates: np.ndarray


def patient_bootstrap(metric: Callable[[np.ndarray], float | np.ndarray], patient_ids: Sequence[str],
                      n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> Interval:
    """Percentile bootstrap interval of `metric`, resampling patients (with all their images).

    Args:
        metric: maps an array of image indices (a resample, with repeats) to a number or a
            vector of numbers (one interval each).
        patient_ids: the patient of each image, in image order.
        n_resamples: bootstrap replicates.
        confidence: interval coverage.
        seed: fixes the resamples, so reruns give the same interval.

    Returns:
        The interval (arrays of bounds for a vector metric); NaN bounds when there are fewer
        than two patients.
    """
    patients = np.asarray([str(p) for p in patient_ids], dtype=object)
    unique, inverse = np.unique(patients, return_inverse=True)
    members = [np.flatnonzero(inverse == k) for k in range(len(unique))]
    if len(unique) < 2:
        logger.warning("bootstrap needs at least two patients; got %d, interval left undefined", len(unique))
        return Interval(float("nan"), float("nan"), np.array([]))

    def statistic(patient_sample: np.ndarray):
        return metric(np.concatenate([members[int(k)] for k in patient_sample]))

    replicates: list = []

    def recording(patient_sample: np.ndarray):
        value = statistic(patient_sample)
        replicates.append(value)
        return value

    result = bootstrap((np.arange(len(unique)),), recording, n_resamples=n_resamples, vectorized=False,
                       confidence_level=confidence, method="percentile",
                       rng=np.random.default_rng(seed))
    # scipy also evaluates the statistic once on the original sample; keep only the resamples.
    low, high = result.confidence_interval.low, result.confidence_interval.high
    if np.ndim(low) == 0:
        low, high = float(low), float(high)
    return Interval(low, high, np.asarray(replicates[-n_resamples:]))


METRIC_NAMES = ("accuracy", "macro_f1", "reference_f1", "invalid_rate")


def _fast_metrics(cm: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """The four METRIC_NAMES from a [K, K+1] confusion matrix (last column: invalid).

    Hand-written on purpose: the bootstrap evaluates thousands of replicates per task and model,
    and scikit-learn's per-call input validation (a few ms each) would dominate the run.
    `tests/test_evaluation_statistics.py` checks it against scikit-learn.
    """
    k = cm.shape[0]
    n = cm.sum()
    tp = np.diag(cm[:, :k]).astype(float)
    predicted = cm[:, :k].sum(axis=0).astype(float)
    actual = cm.sum(axis=1).astype(float)
    denom = predicted + actual
    f1 = np.divide(2 * tp, denom, out=np.zeros(k), where=denom > 0)
    tp_pos, pred_pos, act_pos = tp[positive].sum(), predicted[positive].sum(), actual[positive].sum()
    micro = 2 * tp_pos / (pred_pos + act_pos) if pred_pos + act_pos > 0 else 0.0
    return np.array([tp.sum() / n, f1.mean(), micro, cm[:, k].sum() / n])


def metrics_with_intervals(labels, predictions, patient_ids, classes: Sequence[str],
                           positive_classes: Sequence[str], n_resamples: int = 1000,
                           seed: int = 0, confidence: float = 0.95) -> dict[str, dict[str, float]]:
    """Point metrics (scikit-learn), each with its patient-clustered percentile interval.

    Returns:
        metric name (METRIC_NAMES) -> {"value", "ci_low", "ci_high"}.
    """
    labels = np.asarray(labels, dtype=object)
    preds = _as_predictions(predictions)
    point = point_metrics(labels, preds, classes, positive_classes)
    index = {c: i for i, c in enumerate(classes)}
    k = len(classes)
    label_codes = np.array([index[str(lab)] for lab in labels], dtype=int)
    pred_codes = np.array([index.get(str(p), k) for p in preds], dtype=int)
    positive = np.array([index[c] for c in positive_classes], dtype=int)

    def metric(idx: np.ndarray) -> np.ndarray:
        cells = np.bincount(label_codes[idx] * (k + 1) + pred_codes[idx], minlength=k * (k + 1))
        return _fast_metrics(cells.reshape(k, k + 1), positive)

    interval = patient_bootstrap(metric, patient_ids, n_resamples=n_resamples, confidence=confidence,
                                 seed=seed)
    low = np.broadcast_to(interval.low, (len(METRIC_NAMES),))
    high = np.broadcast_to(interval.high, (len(METRIC_NAMES),))
    return {name: {"value": point[name], "ci_low": float(low[i]), "ci_high": float(high[i])}
            for i, name in enumerate(METRIC_NAMES)}


@dataclass(frozen=True)
class McNemarResult:
    """One paired comparison: discordant counts, the test used and its p-value."""

    model_a: str
    model_b: str
    n_images: int
    only_a_correct: int
    only_b_correct: int
    exact: bool
    statistic: float
    p_value: float
    p_holm: float = float("nan")


def mcnemar_paired(correct_a: dict[str, bool], correct_b: dict[str, bool], model_a: str = "a",
                   model_b: str = "b") -> McNemarResult:
    """McNemar's test of two models on the same images, paired by image id.

    Args:
        correct_a: image id -> whether model A answered correctly (same for B).

    Returns:
        The result; exact binomial when fewer than 25 discordant pairs.

    Raises:
        ValueError: the two models share no image id.
    """
    shared = sorted(set(correct_a) & set(correct_b))
    if not shared:
        raise ValueError(f"McNemar {model_a} vs {model_b}: no image id in common; "
                         "evaluate both on the same images")
    if len(shared) < max(len(correct_a), len(correct_b)):
        logger.warning("McNemar %s vs %s: only %d image ids in common", model_a, model_b, len(shared))
    a = np.array([bool(correct_a[i]) for i in shared])
    b = np.array([bool(correct_b[i]) for i in shared])
    table = [[int(np.sum(a & b)), int(np.sum(a & ~b))], [int(np.sum(~a & b)), int(np.sum(~a & ~b))]]
    discordant = table[0][1] + table[1][0]
    exact = discordant < EXACT_BELOW_DISCORDANT
    result = mcnemar(table, exact=exact, correction=True)
    return McNemarResult(model_a, model_b, len(shared), table[0][1], table[1][0], exact,
                         float(result.statistic), float(result.pvalue))


def holm_correct(results: list[McNemarResult]) -> list[McNemarResult]:
    """The same comparisons with Holm-adjusted p-values across them."""
    if not results:
        return []
    _, adjusted, _, _ = multipletests([r.p_value for r in results], method="holm")
    return [McNemarResult(**{**r.__dict__, "p_holm": float(p)}) for r, p in zip(results, adjusted)]
