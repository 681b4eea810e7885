"""The pipeline's summary page and the seed summary, from run folders laid out as the steps write them."""

import json
import os

import pandas as pd
import pytest

from evaluation.pipeline_summary import write_pipeline_summary
from evaluation.seed_summary import summarise_seeds


def _metric(value, low=None, high=None):
    return {"value": value, "ci_low": low if low is not None else value - 0.05,
            "ci_high": high if high is not None else value + 0.05}


def _result(model, task, accuracy, macro_f1, invalid=0.0):
    return {"model": model, "task": task, "metrics": {"accuracy": _metric(accuracy), "macro_f1": _metric(macro_f1),
                                                     "invalid_rate": _metric(invalid, invalid, invalid)}}


def _write(path, payload):
    path.mkdir(parents=True, exist_ok=True)
    (path / ("metrics.json" if "results" in payload else "training_summary.json")).write_text(json.dumps(payload))


def test_pipeline_summary_reports_every_step_and_says_what_did_not_run(tmp_path):
    pipe = tmp_path / "pipeline"
    _write(pipe / "closed_ended_staging", {"tasks": ["staging"], "results": [
        _result("specialist_v5_192px", "staging", 0.74, 0.71), _result("specialist_v5_192px+calibrated", "staging", 0.7, 0.69),
        _result("retinavlm_base_192px", "staging", 0.52, 0.45), _result("majority_class", "staging", 0.18, 0.05)],
        "grounding": {"specialist_v5_192px": {"staging": {"gap": 3.1}}, "retinavlm_base_192px": {"staging": {"gap": 0.7}}}})
    _write(pipe / "open_ended", {"tasks": ["staging", "referral"], "results": [
        _result("specialist_v5_192px", "staging", 0.61, 0.5, invalid=0.02),
        _result("specialist_v5_192px", "referral", 0.8, 0.7), _result("majority_class", "referral", 0.62, 0.25)],
        "report_accuracy": [{"model": "specialist_v5_192px", "metric": "contradictory_reports", "value": 0.25,
                             "ci_low": 0.2, "ci_high": 0.3}]})
    _write(pipe / "train_part_2", {"grounding": [{"step": 800, "all": {"gap": 0.09},
                                                  "10_staging_accuracy": {"gap": 0.6}}]})
    (pipe / "saliency").mkdir()
    (pipe / "saliency" / "localisation_summary.json").write_text(json.dumps({"per_biomarker": [
        {"biomarker": "srf", "phrases": 12, "pointing_game": 0.25, "pointing_uniform": 0.05,
         "energy_ratio_to_uniform": 1.8}]}))
    (pipe / "train_part_2.done").write_text("412\n")
    (pipe / "phantom.done").write_text("16\n")
    os.utime(pipe / "phantom.done", ns=(1, 1))  # finished first: listed first, whatever its name

    text = write_pipeline_summary(pipe).read_text()
    assert "| staging | 0.180 / 0.050 | 0.520 / 0.450 | 0.740 [0.690, 0.790] / 0.710 [0.660, 0.760] | " \
           "0.700 [0.650, 0.750] / 0.690 [0.640, 0.740] | 0.70 / 3.10 |" in text
    assert "| closed_ended_referral | not run |" in text
    assert "| open-ended judge: staging | 0.610 [0.560, 0.660] | 2.0% | - |" in text
    assert "| open-ended judge: referral | 0.800 [0.750, 0.850] | 0.0% | 0.620 [0.570, 0.670] |" in text
    assert "| two-step protocol: staging | not run |" in text
    assert "Open-ended reports that state and deny the same finding 25.0% [20.0%, 30.0%]." in text
    assert "| srf | 12 | 0.250 vs 0.050 | 1.80 |" in text
    assert "| train_part_2 (step 800) | 0.090 | 10_staging_accuracy 0.600 |" in text
    assert "| train_part_1 | not run |" in text
    assert "| phantom | 16 |\n| train_part_2 | 412 |\n| all steps | 428 |" in text


def test_pipeline_summary_counts_biomarkers_above_the_majority_class(tmp_path):
    pipe = tmp_path / "pipeline"
    _write(pipe / "closed_ended_biomarkers", {"tasks": ["biomarker_drusen", "biomarker_srf"], "results": [
        _result("specialist_v5_192px", "biomarker_drusen", 0.7, 0.65), _result("majority_class", "biomarker_drusen", 0.5, 0.45),
        _result("specialist_v5_192px", "biomarker_srf", 0.8, 0.55), _result("majority_class", "biomarker_srf", 0.9, 0.5),
        _result("retinavlm_base_192px", "biomarker_drusen", 0.5, 0.45), _result("retinavlm_base_192px", "biomarker_srf", 0.9, 0.5)],
        "finding_separation": {"specialist_v5_192px": {"margin_correlation": 0.31, "label_correlation": 0.05},
                               "retinavlm_base_192px": {"margin_correlation": 0.987, "label_correlation": 0.05}}})
    text = write_pipeline_summary(pipe).read_text()
    assert "beats the majority class with non-overlapping CIs: specialist 1 of 2 (drusen); part-1 model 0 of 2." in text
    assert "correlate between biomarkers (mean over pairs): specialist 0.31; part-1 model 0.99; the labels 0.05" in text


def test_seed_summary_gives_mean_and_spread(tmp_path):
    for seed, accuracy in (("0", 0.70), ("1", 0.74), ("2", 0.72)):
        _write(tmp_path / f"seed_{seed}" / "closed_ended_staging", {"tasks": ["staging"], "results": [
            _result("specialist_v5_192px", "staging", accuracy, accuracy - 0.1)],
            "grounding": {"specialist_v5_192px": {"staging": {"gap": 3.0}}}})
    summary = summarise_seeds(tmp_path)
    row = summary[(summary["task"] == "staging") & (summary["metric"] == "accuracy")].iloc[0]
    assert row["mean"] == pytest.approx(0.72) and row["std"] == pytest.approx(0.02) and row["seeds"] == 3
    assert pd.read_csv(tmp_path / "seed_summary.csv").shape[0] == 3  # accuracy, macro-F1, gap
    assert "| specialist_v5_192px | staging | accuracy | 0.720 | 0.020 | 0.700 | 0.740 | 3 |" in \
        (tmp_path / "seed_summary.md").read_text()


def test_seed_summary_counts_biomarkers_above_the_majority_class(tmp_path):
    # Non-overlapping CIs count: drusen (0.60-0.70 vs 0.40-0.50) yes, srf (0.50-0.60 vs 0.45-0.55) no.
    for seed, srf in (("0", 0.55), ("1", 0.70)):
        _write(tmp_path / f"seed_{seed}" / "closed_ended_biomarkers", {"tasks": ["biomarker_drusen", "biomarker_srf"], "results": [
            _result("specialist_v5_192px", "biomarker_drusen", 0.7, 0.65), _result("majority_class", "biomarker_drusen", 0.5, 0.45),
            _result("specialist_v5_192px", "biomarker_srf", 0.8, srf), _result("majority_class", "biomarker_srf", 0.9, 0.5)]})
    summary = summarise_seeds(tmp_path).set_index(["model", "task", "metric"])
    row = summary.loc[("specialist_v5_192px", "biomarkers", "above_majority")]
    assert (row["min"], row["max"], row["seeds"]) == (1, 2, 2)
    assert ("majority_class", "biomarkers", "above_majority") not in summary.index


def test_seed_summary_reads_reports_of_open_ended_runs(tmp_path):
    for seed, (accuracy, invalid) in (("0", (0.6, 0.1)), ("1", (0.7, 0.3))):
        _write(tmp_path / f"seed_{seed}" / "closed_ended_referral", {"tasks": ["referral"], "results": [
            _result("specialist_v5_192px", "referral", 0.8, 0.7)]})
        _write(tmp_path / f"seed_{seed}" / "open_ended", {"tasks": ["referral"], "results": [
            _result("specialist_v5_192px", "referral", accuracy, accuracy - 0.1, invalid=invalid)]})
        for run in ("closed_ended_referral", "open_ended"):  # a trial (`make trial`) scores validation
            (tmp_path / f"seed_{seed}" / run / "resolved_config.yaml").write_text("evaluation:\n  split: validation\n")
    summary = summarise_seeds(tmp_path).set_index(["task", "metric"])
    assert (tmp_path / "seed_summary.md").read_text().startswith("# Results over 2 training seeds (validation split)")
    assert summary.loc[("report_referral", "accuracy"), "mean"] == pytest.approx(0.65)
    assert summary.loc[("report_referral", "invalid_rate"), "mean"] == pytest.approx(0.2)
    assert summary.loc[("referral", "accuracy"), "seeds"] == 2
    assert ("referral", "invalid_rate") not in summary.index  # closed-ended rows keep their two metrics


def test_seed_summary_without_seeds_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="make seeds"):
        summarise_seeds(tmp_path)


def test_seed_summary_carries_the_report_quality_shares(tmp_path):
    for seed, share in (("0", 0.2), ("1", 0.4), ("2", 0.3)):
        _write(tmp_path / f"seed_{seed}" / "open_ended", {"tasks": [], "results": [], "report_accuracy": [
            {"model": "specialist_v5_192px", "metric": "contradictory_reports", "value": share}]})
    row = summarise_seeds(tmp_path).query("task == 'reports' and metric == 'contradictory_reports'").iloc[0]
    assert row["mean"] == pytest.approx(0.3) and row["std"] == pytest.approx(0.1) and row["seeds"] == 3
