"""Decision calibration of option likelihoods on a labelled held-out split.

A small specialist's option log-probabilities rank scans well (an image with drusen makes "Yes"
more likely than one without) while their absolute level still carries the answer prior of its
curriculum: argmax can answer "No" to every scan although the ranking is informative. Calibration
adds one bias per option, fitted on the validation split's labels to maximise an objective there
(macro-F1 by default; accuracy or balanced accuracy), and applies it unchanged to the test split.
For a yes/no task that is threshold tuning on held-out data; with more options the biases are
fitted by coordinate ascent. The test labels are never seen, so the test metrics stay honest.
The objectives are computed from class indices with numpy, not scikit-learn, because the fit
evaluates them once per candidate bias (thousands of times per task); tests check them against
scikit-learn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def macro_f1_from_indices(labels: np.ndarray, predictions: np.ndarray, n_classes: int) -> float:
    """Macro-F1 over all `n_classes` classes (a class never seen nor predicted scores 0)."""
    matrix = np.bincount(labels * n_classes + predictions, minlength=n_classes * n_classes)
    matrix = matrix.reshape(n_classes, n_classes)
    true_positive = np.diag(matrix).astype(float)
    denominator = matrix.sum(axis=0) + matrix.sum(axis=1)
    f1 = np.divide(2 * true_positive, denominator, out=np.zeros(n_classes), where=denominator > 0)
    return float(f1.mean())


def accuracy_from_indices(labels: np.ndarray, predictions: np.ndarray, n_classes: int) -> float:
    """Share of correct predictions."""
    return float(np.mean(labels == predictions))


def balanced_accuracy_from_indices(labels: np.ndarray, predictions: np.ndarray, n_classes: int) -> float:
    """Mean recall over the classes that occur in `labels`."""
    recalls = [np.mean(predictions[labels == k] == k) for k in range(n_classes) if np.any(labels == k)]
    return float(np.mean(recalls))


Objective = Callable[[np.ndarray, np.ndarray, int], float]
OBJECTIVES: dict[str, Objective] = {"macro_f1": macro_f1_from_indices, "accuracy": accuracy_from_indices,
                                    "balanced_accuracy": balanced_accuracy_from_indices}


def _best_bias(scores: np.ndarray, labels: np.ndarray, biases: np.ndarray, k: int,
               objective: Objective) -> tuple[float, float]:
    """The bias of option `k` that maximises the objective with the other biases fixed; ties go to
    the value closest to the current one (the smallest change)."""
    others = np.delete(scores + biases, k, axis=1).max(axis=1)
    # Option k wins an image exactly when its bias exceeds this crossing point.
    crossings = np.unique(others - scores[:, k])
    candidates = np.concatenate([[crossings[0] - 1.0], (crossings[:-1] + crossings[1:]) / 2,
                                 [crossings[-1] + 1.0]])
    n_classes = scores.shape[1]
    best_value, best_score = biases[k], -1.0
    for value in candidates:
        trial = biases.copy()
        trial[k] = value
        score = objective(labels, (scores + trial).argmax(axis=1), n_classes)
        better = score > best_score + 1e-12
        tie_closer = abs(score - best_score) <= 1e-12 and abs(value - biases[k]) < abs(best_value - biases[k])
        if better or tie_closer:
            best_value, best_score = float(value), score
    return best_value, best_score


def fit_option_biases(scores: np.ndarray, labels: Sequence[str], classes: Sequence[str],
                      objective: str = "macro_f1", rounds: int = 4) -> np.ndarray:
    """Per-option additive biases that maximise the objective of `argmax(scores + biases)`.

    Args:
        scores: [N, K] option scores (log-probabilities) on the calibration images.
        labels: the N reference labels, each one of `classes`.
        classes: the K options, in the column order of `scores`.
        objective: one of OBJECTIVES (macro_f1, accuracy, balanced_accuracy).
        rounds: coordinate-ascent sweeps over the options (the first option's bias stays 0,
            since only differences matter).

    Returns:
        [K] biases, zeros when nothing improves on the raw argmax.

    Raises:
        ValueError: shapes disagree, a label is not one of `classes`, or the objective is unknown.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"calibration objective {objective!r} is unknown; choose one of {', '.join(OBJECTIVES)}")
    metric = OBJECTIVES[objective]
    scores = np.asarray(scores, dtype=float)
    classes = list(classes)
    if scores.ndim != 2 or scores.shape != (len(labels), len(classes)):
        raise ValueError(f"calibration scores have shape {scores.shape}; expected "
                         f"({len(labels)} images, {len(classes)} options)")
    unknown = sorted({str(label) for label in labels} - set(classes))
    if unknown:
        raise ValueError(f"calibration labels {unknown} are not options of the task ({', '.join(classes)})")
    index = np.array([classes.index(label) for label in labels])
    biases = np.zeros(len(classes))
    best = metric(index, scores.argmax(axis=1), len(classes))
    for _ in range(rounds):
        improved = False
        for k in range(1, len(classes)):
            value, score = _best_bias(scores, index, biases, k, metric)
            if score > best + 1e-12:
                biases[k], best, improved = value, score, True
        if not improved:
            break
    return biases
