"""Each statistic against a case computed by hand."""

import numpy as np
import pytest

from evaluation.statistics import (
    INVALID,
    McNemarResult,
    accuracy,
    confusion,
    holm_correct,
    invalid_rate,
    macro_f1,
    mcnemar_paired,
    metrics_with_intervals,
    patient_bootstrap,
    per_class,
    reference_micro_f1,
)

CLASSES = ("a", "b", "c")
LABELS = ["a", "a", "b", "b", "c"]
PREDS = ["a", "b", "b", None, "c"]  # None = invalid answer


def test_accuracy_counts_invalid_as_wrong():
    assert accuracy(LABELS, PREDS) == pytest.approx(3 / 5)


def test_per_class_and_macro_f1():
    # a: P 1/1, R 1/2 -> F1 2/3; b: P 1/2, R 1/2 -> 1/2; c: P 1, R 1 -> 1.
    table = per_class(LABELS, PREDS, CLASSES)
    assert table["a"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert table["b"]["f1"] == pytest.approx(0.5)
    assert macro_f1(LABELS, PREDS, CLASSES) == pytest.approx((2 / 3 + 0.5 + 1) / 3)


def test_reference_f1_counts_invalid_as_miss():
    # TP 3, FP 1 (the b given for an a), FN 2 (that a, and the invalid b): P 3/4, R 3/5.
    assert reference_micro_f1(LABELS, PREDS, CLASSES) == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    # Binary: present is the positive class; TP 1, FP 1, FN 1 (the invalid) -> F1 1/2.
    assert reference_micro_f1(["present", "present", "absent", "absent"],
                              ["present", None, "present", "absent"], ["present"]) == pytest.approx(0.5)
    assert invalid_rate(PREDS) == pytest.approx(0.2)


def test_confusion_has_an_invalid_column():
    matrix = confusion(LABELS, PREDS, CLASSES)
    assert matrix.tolist() == [[1, 1, 0, 0], [0, 1, 0, 1], [0, 0, 1, 0]]


def test_patient_bootstrap_resamples_whole_patients():
    # Patient p1 has three correct images, p2 one wrong image. A patient-level resample is
    # {p1,p1} (acc 1), {p1,p2} (3/4) or {p2,p2} (0); an image-level one could give 1/4, 1/2 or 2/3.
    correct = np.array([1.0, 1.0, 1.0, 0.0])
    interval = patient_bootstrap(lambda idx: float(correct[idx].mean()), ["p1", "p1", "p1", "p2"],
                                 n_resamples=400, seed=3)
    assert set(np.round(interval.replicates, 6)) <= {0.0, 0.75, 1.0}
    assert len(interval.replicates) == 400
    assert (interval.low, interval.high) == (0.0, 1.0)
    again = patient_bootstrap(lambda idx: float(correct[idx].mean()), ["p1", "p1", "p1", "p2"],
                              n_resamples=400, seed=3)
    assert np.array_equal(interval.replicates, again.replicates)


def test_metrics_with_intervals_bracket_the_value():
    rng = np.random.default_rng(0)
    labels = rng.choice(list(CLASSES), size=60).tolist()
    preds = [lab if rng.random() < 0.7 else "a" for lab in labels]
    patients = [f"p{i // 3}" for i in range(60)]
    out = metrics_with_intervals(labels, preds, patients, CLASSES, CLASSES, n_resamples=200)
    for name in ("accuracy", "macro_f1", "reference_f1"):
        assert out[name]["ci_low"] <= out[name]["value"] <= out[name]["ci_high"]
        assert out[name]["ci_low"] < out[name]["ci_high"]


def test_mcnemar_identical_predictions_is_not_significant():
    correct = {f"img{i}": i % 3 == 0 for i in range(50)}
    result = mcnemar_paired(correct, dict(correct))
    assert result.exact and result.p_value == 1.0
    assert result.only_a_correct == result.only_b_correct == 0


def test_mcnemar_exact_binomial_by_hand():
    # Three discordant pairs, all favouring A: two-sided exact p = 2 * 0.5**3 = 0.25.
    a = {"i1": True, "i2": True, "i3": True, "i4": True, "i5": False}
    b = {"i1": False, "i2": False, "i3": False, "i4": True, "i5": False, "extra": True}
    result = mcnemar_paired(a, b)
    assert (result.n_images, result.only_a_correct, result.only_b_correct) == (5, 3, 0)
    assert result.p_value == pytest.approx(0.25)


def test_mcnemar_chi_square_when_many_discordant():
    a = {f"i{k}": k < 40 for k in range(60)}
    b = {f"i{k}": k >= 30 for k in range(60)}  # 30 only-A, 20 only-B
    result = mcnemar_paired(a, b)
    assert not result.exact
    assert result.statistic == pytest.approx((abs(30 - 20) - 1) ** 2 / 50)


def test_mcnemar_without_shared_images_fails():
    with pytest.raises(ValueError, match="no image id in common"):
        mcnemar_paired({"x": True}, {"y": True})


def test_holm_by_hand():
    raw = [McNemarResult("m", str(k), 10, 1, 0, True, 0.0, p) for k, p in enumerate([0.01, 0.04, 0.03])]
    # Sorted 0.01, 0.03, 0.04 times 3, 2, 1 -> 0.03, 0.06, 0.04 -> monotone 0.03, 0.06, 0.06.
    assert [r.p_holm for r in holm_correct(raw)] == pytest.approx([0.03, 0.06, 0.06])


def test_invalid_is_not_a_class_name():
    assert INVALID not in CLASSES


def test_fast_replicate_metrics_match_scikit_learn():
    from evaluation.statistics import METRIC_NAMES, _fast_metrics, point_metrics

    rng = np.random.default_rng(1)
    labels = rng.choice(list(CLASSES), size=40).tolist()
    preds = [rng.choice(["a", "b", "c", None]) for _ in labels]
    cm = confusion(labels, preds, CLASSES)
    for positive in (CLASSES, ("c",)):
        fast = _fast_metrics(cm, np.array([CLASSES.index(c) for c in positive]))
        slow = point_metrics(labels, preds, CLASSES, positive)
        assert fast == pytest.approx([slow[name] for name in METRIC_NAMES])


def test_comparisons_are_holm_corrected_within_and_across_tasks():
    import pandas as pd

    from evaluation.scoring import score_all
    from evaluation.tasks import build_tasks

    tasks = build_tasks("biomarkers", {"question": "{biomarker}?"}, ["srf", "irf"])
    rows = []
    for task, flips in ((tasks[0], 3), (tasks[1], 0)):
        for i in range(10):
            label = "present" if i % 2 else "absent"
            wrong = "absent" if label == "present" else "present"
            rows.append({"model": "a", "task": task.name, "image_id": f"i{i}", "patient_id": f"p{i}",
                         "label": label, "prediction": label})
            rows.append({"model": "b", "task": task.name, "image_id": f"i{i}", "patient_id": f"p{i}",
                         "label": label, "prediction": wrong if i < flips else label})
    _, comparisons = score_all(pd.DataFrame(rows), tasks, n_resamples=10)
    by_task = {c["task"]: c for c in comparisons}
    # srf: 3 discordant pairs -> exact p 0.25 (one pair per task, so p_holm = p); irf: p = 1.
    assert by_task["biomarker_srf"]["p_value"] == pytest.approx(0.25)
    assert by_task["biomarker_srf"]["p_holm"] == pytest.approx(0.25)
    # Across the two tasks: sorted 0.25 x 2 = 0.5, then max(0.5, 1 x 1) = 1.
    assert by_task["biomarker_srf"]["p_holm_all_tasks"] == pytest.approx(0.5)
    assert by_task["biomarker_irf"]["p_holm_all_tasks"] == pytest.approx(1.0)
