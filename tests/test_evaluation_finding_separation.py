"""Do a model's presence answers tell the findings apart, or is every question one reading?"""

import numpy as np
import pytest

from evaluation.grounding import finding_separation


def _records(model, margins, labels):
    """Prediction records of one model: margins[task][i] is scan i's present-minus-absent score."""
    return [{"model": model, "task": task, "image_id": f"scan{i}", "label": "present" if labels[task][i] else "absent",
             "option_scores": {"present": m, "absent": 0.0}}
            for task, values in margins.items() for i, m in enumerate(values)]


def test_one_reading_for_every_finding_correlates_fully_and_separate_readings_do_not():
    rng = np.random.default_rng(0)
    labels = {f"biomarker_{b}": rng.random(200) < 0.3 for b in ("drusen", "srf", "irf")}
    abnormal = rng.normal(size=200)
    one_reading = {task: 2.0 * abnormal + offset for offset, task in enumerate(labels)}
    per_finding = {task: np.where(y, 1.0, -1.0) + rng.normal(scale=0.5, size=200) for task, y in labels.items()}
    records = _records("blind", one_reading, labels) + _records("reader", per_finding, labels)
    records.append({"model": "reader", "task": "staging", "image_id": "scan0", "label": "healthy",
                    "option_scores": {"healthy": -0.1, "early": -2.0}})  # not a presence task: ignored
    separation = finding_separation(records)
    assert separation["blind"]["margin_correlation"] == pytest.approx(1.0)
    assert separation["blind"]["biomarkers"] == 3
    assert abs(separation["reader"]["margin_correlation"]) < 0.2
    assert separation["reader"]["label_correlation"] == separation["blind"]["label_correlation"]
    assert abs(separation["reader"]["label_correlation"]) < 0.2


def test_fewer_than_two_biomarkers_or_constant_margins_give_no_figure():
    labels = {"biomarker_drusen": [True, False, True, False], "biomarker_srf": [False, False, True, True]}
    assert finding_separation(_records("m", {"biomarker_drusen": [1.0, -1.0, 0.5, 0.2]}, labels)) == {}
    constant = _records("m", {"biomarker_drusen": [1.0] * 4, "biomarker_srf": [0.1, 0.2, 0.3, 0.4]}, labels)
    assert finding_separation(constant)["m"]["margin_correlation"] is None
