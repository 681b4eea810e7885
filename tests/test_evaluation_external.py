"""External predictions (graders, other systems) scored end to end: JSONL in, metrics files out."""

import json

import pandas as pd
import pytest

from evaluation.external import PredictionFileError, score_external_predictions
from support.configs import compose_config
from support.tables import write_tiny_dataset

# Test images test0..test5 have stages healthy, early, intermediate, late_wet_active, late_dry,
# late_wet_inactive (tests/support/tables.py).
TRUTH = ["healthy", "early", "intermediate", "late_wet_active", "late_dry", "late_wet_inactive"]
GRADER_TEXT = [
    "Healthy retina, no AMD.",
    "No signs of late AMD; early AMD.",
    "Not late wet; intermediate AMD.",
    "Active wet AMD with subretinal fluid.",
    "I cannot decide.",  # invalid
    "late dry AMD",  # wrong (truth: late wet inactive)
]


def _write(path, items):
    path.write_text("\n".join(json.dumps(i) for i in items) + "\n")
    return path


def _score(tmp_path, files, extra=()):
    table = write_tiny_dataset(tmp_path / "data")
    cfg = compose_config("score_predictions", tmp_path, [f"paths.data_dir={table.parent}",
                                                         f"predictions_files=[{','.join(map(str, files))}]",
                                                         "evaluation.statistics.n_resamples=30", *extra])
    return score_external_predictions(cfg)


def test_text_and_label_predictions_scored_end_to_end(tmp_path):
    text_file = _write(tmp_path / "junior.jsonl", [{"image_id": f"test{i}", "text": t} for i, t in enumerate(GRADER_TEXT)])
    label_file = _write(tmp_path / "senior.jsonl",
                        [{"image_id": f"test{i}", "label": s, "model": "senior"} for i, s in enumerate(TRUTH)])
    out = _score(tmp_path, [text_file, label_file])
    run_dir = out["run_dir"]
    metrics = pd.read_csv(run_dir / "metrics.csv").set_index(["model", "metric"])["value"]
    assert metrics[("senior", "accuracy")] == 1.0
    assert metrics[("junior", "accuracy")] == pytest.approx(4 / 6)
    assert metrics[("junior", "invalid_rate")] == pytest.approx(1 / 6)
    assert ("majority_class", "accuracy") in metrics.index
    lines = [json.loads(x) for x in (run_dir / "predictions.jsonl").read_text().splitlines()]
    junior = {line["image_id"]: line["prediction"] for line in lines if line["model"] == "junior"}
    assert junior == {"test0": "healthy", "test1": "early", "test2": "intermediate", "test3": "late_wet_active",
                      "test4": None, "test5": "late_dry"}
    comparison = next(c for c in out["comparisons"] if {c["model_a"], c["model_b"]} == {"junior", "senior"})
    assert comparison["exact"] and comparison["only_b_correct"] + comparison["only_a_correct"] == 2
    assert (run_dir / "figures" / "confusion_staging_junior.png").is_file()


def test_missing_images_count_as_invalid(tmp_path):
    partial = _write(tmp_path / "partial.jsonl", [{"image_id": "test0", "label": "healthy"}])
    out = _score(tmp_path, [partial])
    result = next(r for r in out["results"] if r["model"] == "partial")
    assert result["n_images"] == 6
    assert result["metrics"]["invalid_rate"]["value"] == pytest.approx(5 / 6)


@pytest.mark.slow
def test_one_report_scores_every_biomarker(tmp_path):
    reports = _write(tmp_path / "reports.jsonl", [
        {"image_id": "test3", "text": "There is subretinal fluid and intraretinal fluid; no drusen."}])
    out = _score(tmp_path, [reports], ["dataset/task=closed_ended_specialist_biomarkers", "evaluation.figures=false"])
    lines = [json.loads(x) for x in (out["run_dir"] / "predictions.jsonl").read_text().splitlines()]
    test3 = {line["task"]: line["prediction"] for line in lines if line["image_id"] == "test3"}
    assert test3["biomarker_srf"] == "present" and test3["biomarker_irf"] == "present"
    assert test3["biomarker_drusen"] == "absent" and test3["biomarker_shrm"] is None


@pytest.mark.parametrize("item,match", [
    ({"image_id": "nope", "label": "healthy"}, "not in the evaluated split"),
    ({"image_id": "test0", "label": "very late"}, "not one of"),
    ({"image_id": "test0"}, "'label'"),
    ({"image_id": None, "label": "early"}, "'image_id' must be a non-empty string"),
    ({"image_id": "test0", "text": ["a", "list"]}, "'text' must be text"),
    ({"image_id": "test0", "label": {"stage": "early"}}, "'label' must be text"),
    ({"image_id": "test0", "label": True}, "'label' must be text"),
])
def test_bad_lines_name_file_and_line(tmp_path, item, match):
    bad = _write(tmp_path / "bad.jsonl", [{"image_id": "test1", "label": "early"}, item])
    with pytest.raises(PredictionFileError, match=rf"bad.jsonl:2: .*{match}"):
        _score(tmp_path, [bad])


@pytest.mark.parametrize("content,match", [
    (b'{"image_id": "test1", "label": "early"}\n{"image_id": \n', "bad.jsonl:2: not valid JSON"),
    (b'\xff\xfe\x00binary', "not UTF-8"),
    (b'["a", "list"]\n', "bad.jsonl:1: each line needs an 'image_id'"),
])
def test_malformed_files_name_the_problem(tmp_path, content, match):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(content)
    with pytest.raises(PredictionFileError, match=match):
        _score(tmp_path, [bad])
