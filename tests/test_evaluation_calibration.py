"""Option-bias calibration: fitted on labelled scores, it re-decides argmax to maximise macro-F1."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from evaluation.calibration import fit_option_biases, macro_f1_from_indices


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


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="not options of the task"):
        fit_option_biases(np.zeros((2, 2)), ["a", "maybe"], ["a", "b"])
    with pytest.raises(ValueError, match="expected \\(3 images, 2 options\\)"):
        fit_option_biases(np.zeros((2, 2)), ["a", "b", "a"], ["a", "b"])
