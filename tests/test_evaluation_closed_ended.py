"""The closed-ended entry function, run in-process on a tiny untrained model and a tiny dataset."""

import json
import shutil

import pandas as pd
import pytest

from evaluation.closed_ended import run_closed_ended_evaluation
from evaluation.scoring import MAJORITY
from support.configs import compose_config
from support.tables import write_tiny_dataset


@pytest.fixture()
def setup(tmp_path, tiny_vlm_dir):
    table = write_tiny_dataset(tmp_path / "data")
    models = tmp_path / "models"
    for name in ("specialist_v5_192px", "retinavlm_base_192px"):
        shutil.copytree(tiny_vlm_dir, models / name)
    overrides = [f"paths.data_dir={table.parent}", f"paths.model_dir={models}",
                 "evaluation.statistics.n_resamples=40"]
    return tmp_path, overrides


def _run(tmp_path, overrides):
    cfg = compose_config("closed_ended_evaluation", tmp_path, overrides)
    return run_closed_ended_evaluation(cfg)


@pytest.mark.slow
def test_staging_likelihood_two_models(setup):
    tmp_path, overrides = setup
    out = _run(tmp_path, overrides + ["models=[specialist_v5_192px,retinavlm_base_192px]"])
    run_dir = out["run_dir"]
    lines = [json.loads(x) for x in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert len(lines) == 2 * 2 * 6  # two models, raw and calibrated, x six test images
    first = lines[0]
    assert set(first) >= {"model", "task", "image_id", "label", "prompt", "raw_answer", "prediction", "option_scores"}
    assert first["label"] == "healthy" and first["image_id"] == "test0"
    # The raw prediction is the option the model scores highest ...
    assert first["model"] == "specialist_v5_192px"
    assert first["prediction"] == max(first["option_scores"], key=first["option_scores"].get)
    # ... and the calibrated one the best option after the biases fitted on the validation split.
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["calibration"]["split"] == "validation" and saved["calibration"]["n_images"] == 6
    assert saved["calibration"]["objective"] == "macro_f1"
    biases = saved["calibration"]["option_biases"][first["model"]]["staging"]
    assert set(biases) == set(first["option_scores"]) and biases["healthy"] == 0.0
    calibrated = next(x for x in lines if x["model"] == "specialist_v5_192px+calibrated" and x["image_id"] == "test0")
    assert calibrated["option_scores"] == first["option_scores"]
    assert calibrated["prediction"] == max(first["option_scores"], key=lambda c: first["option_scores"][c] + biases[c])
    models = {r["model"] for r in out["results"]}
    assert models == {"specialist_v5_192px", "retinavlm_base_192px", "specialist_v5_192px+calibrated",
                      "retinavlm_base_192px+calibrated", MAJORITY}
    # Five entries -> ten pairwise comparisons, each with a Holm-adjusted p-value.
    assert len(out["comparisons"]) == 10 and all(0 <= c["p_holm"] <= 1 for c in out["comparisons"])
    # The image-reliance gap of each model: own-scan and swapped-scan answer losses of the true option.
    gap = saved["grounding"]["specialist_v5_192px"]["staging"]
    assert gap["n_images"] == 6 and gap["gap"] == pytest.approx(gap["swapped_answer_loss"] - gap["answer_loss"])
    own = [-x["option_scores"][x["label"]] for x in lines if x["model"] == "specialist_v5_192px"]
    assert gap["answer_loss"] == pytest.approx(sum(own) / len(own))
    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert {"accuracy", "macro_f1", "reference_f1", "invalid_rate"} <= set(metrics["metric"])
    assert (metrics["ci_low"] <= metrics["value"] + 1e-9).all()
    assert (run_dir / "figures" / "f1_bars.png").stat().st_size > 0
    assert (run_dir / "figures" / "confusion_staging_specialist_v5_192px.png").is_file()
    assert (run_dir / "resolved_config.yaml").is_file()


@pytest.mark.slow
def test_referral_two_step_and_biomarkers(setup):
    tmp_path, overrides = setup
    out = _run(tmp_path, overrides + ["dataset/task=closed_ended_specialist_referral", "evaluation.answer_mode=two_step",
                                      "evaluation.generation.max_new_tokens=8", "evaluation.max_images=4"])
    lines = [json.loads(x) for x in (out["run_dir"] / "predictions.jsonl").read_text().splitlines()]
    assert len(lines) == 4 and all(line["report"] is not None and line["mode"] == "two_step" for line in lines)
    # Random weights write gibberish: whatever it is, it is parsed or counted invalid, never dropped.
    result = next(r for r in out["results"] if r["model"] == "specialist_v5_192px")
    assert result["n_images"] == 4

    out = _run(tmp_path, overrides + ["dataset/task=closed_ended_specialist_biomarkers", f"run_dir={tmp_path / 'bio'}"])
    tasks = {r["task"] for r in out["results"]}
    assert len(tasks) == 10 and "biomarker_double_layer_sign" in tasks
    # Each biomarker is scored on its own column: SRF is present only in test3 (drawn with SRF/IRF).
    rows = [json.loads(x) for x in (out["run_dir"] / "predictions.jsonl").read_text().splitlines()]
    srf = {r["image_id"]: r["label"] for r in rows if r["task"] == "biomarker_srf"}
    dls = {r["image_id"]: r["label"] for r in rows if r["task"] == "biomarker_double_layer_sign"}
    assert srf["test3"] == "present" and dls["test3"] == "absent"
    assert (out["run_dir"] / "figures" / "biomarker_radar.png").is_file()


def test_two_step_reports_are_written_once_per_model_weights(setup, caplog):
    """Step one's reports are kept on disk: referral after staging reuses them; with the cache off
    nothing is kept; another repetition penalty or rewritten weights write new ones."""
    import os

    tmp_path, overrides = setup
    two_step = overrides + ["evaluation.answer_mode=two_step", "evaluation.generation.max_new_tokens=8",
                            "evaluation.max_images=3"]
    runs = iter(range(10))

    def reports(task, *extra):
        out = _run(tmp_path, two_step + [f"dataset/task=closed_ended_specialist_{task}",
                                         f"run_dir={tmp_path / f'run{next(runs)}'}", *extra])
        return [json.loads(x)["report"] for x in (out["run_dir"] / "predictions.jsonl").read_text().splitlines()]

    caplog.set_level("INFO")
    staging = reports("staging")
    cache = tmp_path / "outputs" / "report_cache" / "specialist_v5_192px.jsonl"
    assert len(cache.read_text().splitlines()) == 3 and "reports reused" not in caplog.text
    caplog.clear()
    assert reports("referral") == staging and "3 of 3 reports reused" in caplog.text
    # The open-ended run asks the same question of the same images: it reads them too.
    from evaluation.open_ended import run_open_ended_evaluation

    caplog.clear()
    opened = run_open_ended_evaluation(compose_config("open_ended_evaluation", tmp_path, overrides + [
        "evaluation.generation.max_new_tokens=8", "evaluation.max_images=3", f"run_dir={tmp_path / 'open'}"]))
    written = [json.loads(x)["report"] for x in (opened["run_dir"] / "reports.jsonl").read_text().splitlines()]
    assert written == staging and "3 of 3 reports reused" in caplog.text
    caplog.clear()
    reports("referral", "evaluation.generation.report_cache_dir=false")
    assert "reused" not in caplog.text and len(cache.read_text().splitlines()) == 3
    # Another repetition penalty decodes other text: new reports, kept beside the old ones.
    reports("referral", "evaluation.generation.repetition_penalty=1.5")
    assert "reused" not in caplog.text and len(cache.read_text().splitlines()) == 6
    weights = tmp_path / "models" / "specialist_v5_192px" / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    caplog.clear()
    reports("referral")
    assert "reused" not in caplog.text and len(cache.read_text().splitlines()) == 9


def test_calibrating_on_the_evaluated_split_is_refused(setup):
    tmp_path, overrides = setup
    with pytest.raises(ValueError, match="leaks their labels"):
        _run(tmp_path, overrides + ["evaluation.calibration.split=test"])
    with pytest.raises(ValueError, match="objective=auc is unknown"):
        _run(tmp_path, overrides + ["evaluation.calibration.objective=auc"])


def test_uncalibrated_predictions_are_the_raw_argmax(setup):
    tmp_path, overrides = setup
    out = _run(tmp_path, overrides + ["evaluation.calibration.split=null", "evaluation.max_images=4",
                                      "evaluation.figures=false"])
    lines = [json.loads(x) for x in (out["run_dir"] / "predictions.jsonl").read_text().splitlines()]
    assert len(lines) == 4
    assert all(line["prediction"] == max(line["option_scores"], key=line["option_scores"].get) for line in lines)
    assert json.loads((out["run_dir"] / "metrics.json").read_text())["calibration"] is None


def test_missing_model_names_the_training_command(tmp_path):
    table = write_tiny_dataset(tmp_path / "data")
    cfg = compose_config("closed_ended_evaluation", tmp_path,
                         [f"paths.data_dir={table.parent}", f"paths.model_dir={tmp_path / 'none'}"])
    with pytest.raises(FileNotFoundError, match="vision_language_pretraining"):
        run_closed_ended_evaluation(cfg)
