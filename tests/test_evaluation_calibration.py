"""Option-bias calibration: fitted on labelled scores, it re-decides argmax to maximise macro-F1."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from evaluation.calibration import balanced_accuracy_from_indices, fit_option_biases, macro_f1_from_indices


def test_macro_f1_matches_scikit_learn():
    rng = np.random.default_rng(0)
    labels, predictions = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    predictions[predictions == 3] = 2  # class 3 is never predicted: its F1 is 0, as in scikit-learn
    expected = f1_score(labels, predictions, labels=[0, 1, 2, 3], average="macro", zero_division=0)
    assert macro_f1_from_indices(labels, predictions, 4) == pytest.approx(expected)


def test_yes_no_threshold_recovers_a_shifted_ranking():
    # "present" always scores 2 below "absent", but the margin ranks the cases perfectly:
    # raw argmax says "absent" to everything; one bias on "present" separates them.
    margin = np.array([0.1, 0.2, 0.3, 0.9, 1.0, 1.1]) - 2.0
    scores = np.stack([np.zeros(6), margin], axis=1)
    labels = ["absent"] * 3 + ["present"] * 3
    biases = fit_option_biases(scores, labels, ["absent", "present"])
    assert biases[0] == 0.0
    decided = (scores + biases).argmax(axis=1)
    assert decided.tolist() == [0, 0, 0, 1, 1, 1]
    # The threshold lies between the classes: margin + bias crosses zero between 0.3 and 0.9.
    assert -1.7 - 1e-9 <= -biases[1] <= -1.1 + 1e-9


def test_three_options_each_get_their_own_bias():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, 300)
    scores = rng.normal(0, 0.3, (300, 3))
    scores[np.arange(300), truth] += 1.0   # informative ...
    scores += np.array([0.0, -1.5, -3.0])  # ... but dominated by a prior for option 0
    labels = [("a", "b", "c")[t] for t in truth]
    raw = macro_f1_from_indices(truth, scores.argmax(axis=1), 3)
    biases = fit_option_biases(scores, labels, ["a", "b", "c"])
    calibrated = macro_f1_from_indices(truth, (scores + biases).argmax(axis=1), 3)
    assert raw < 0.4 and calibrated > 0.85
    assert biases[1] > 1.0 and biases[2] > 2.0


def test_nothing_to_gain_leaves_biases_at_zero():
    scores = np.array([[0.0, -1.0], [-1.0, 0.0], [0.0, -2.0], [-2.0, 0.0]])
    assert fit_option_biases(scores, ["a", "b", "a", "b"], ["a", "b"]).tolist() == [0.0, 0.0]


def test_balanced_accuracy_matches_scikit_learn():
    from sklearn.metrics import balanced_accuracy_score
    rng = np.random.default_rng(2)
    labels, predictions = rng.integers(0, 3, 100), rng.integers(0, 3, 100)
    assert balanced_accuracy_from_indices(labels, predictions, 3) == pytest.approx(
        balanced_accuracy_score(labels, predictions))


def test_the_objective_decides_what_a_rare_finding_costs():
    # 2 of 20 scans have the finding; the margin ranks one of them top, the other among the
    # negatives. Accuracy is best never calling it (0.90) or calling only the top one (0.95);
    # macro-F1 pays for catching the second one with a few false alarms.
    margin = np.array([5.0, 0.5, 1.0, 0.9, 0.8, 0.7, 0.6] + [-float(i) for i in range(1, 14)])
    labels = ["present", "present"] + ["absent"] * 18
    scores = np.stack([np.zeros(20), margin - 10.0], axis=1)
    classes = ["absent", "present"]
    called = {objective: int(((scores + fit_option_biases(scores, labels, classes, objective)).argmax(axis=1)).sum())
              for objective in ("accuracy", "macro_f1", "balanced_accuracy")}
    assert called["accuracy"] == 1
    assert called["balanced_accuracy"] == 7  # recall 1 on the finding beats six false alarms in 18
    assert 1 <= called["macro_f1"] <= called["balanced_accuracy"]


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="objective 'auc' is unknown"):
        fit_option_biases(np.zeros((2, 2)), ["a", "b"], ["a", "b"], objective="auc")
    with pytest.raises(ValueError, match="not options of the task"):
        fit_option_biases(np.zeros((2, 2)), ["a", "maybe"], ["a", "b"])
    with pytest.raises(ValueError, match="expected \\(3 images, 2 options\\)"):
        fit_option_biases(np.zeros((2, 2)), ["a", "b", "a"], ["a", "b"])
