"""The entry function behind run/visual_language_gradcam.py, run tiny and in process."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from PIL import Image

from support.tables import write_masked_table
from support.tiny_models import build_saliency_vlm
from models import save_vlm
from saliency import run_visual_language_gradcam

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    model, processor = build_saliency_vlm()
    return save_vlm(model, processor, tmp_path_factory.mktemp("models") / "specialist_v5_192px")


def _config(tmp_path: Path, model_dir: Path, *overrides: str):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    write_masked_table(data, rows=3)
    base = [
        "dataset=retina", "dataset/task=language_visual_attention", "pretrained_models=specialist_v5_192px",
        f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path / 'outputs'}", f"paths.data_dir={data}",
        f"paths.model_dir={model_dir.parent}", f"run_dir={tmp_path / 'run'}",
    ]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name="visual_language_gradcam", overrides=base + list(overrides))


@pytest.mark.slow
def test_run_writes_maps_overlays_and_localisation_scores(tmp_path, saved_model):
    cfg = _config(tmp_path, saved_model, "dataset.task.report_source=annotation", "dataset.task.max_images=2")
    result = run_visual_language_gradcam(cfg)

    run_dir = tmp_path / "run"
    assert (run_dir / "resolved_config.yaml").is_file()
    assert result["images"] == 2 and result["phrases"] > 0 and result["seconds_per_phrase"] > 0
    for record in map(json.loads, (run_dir / "reports.jsonl").read_text().splitlines()):
        folder = run_dir / "images" / record["image_id"]
        phrases = json.loads((folder / "phrases.json").read_text())["phrases"]
        maps = np.load(folder / "maps.npz")
        assert maps["maps"].shape == (len(phrases), 12, 12)  # the default layer: the LeViT stem's 12x12 grid
        assert np.isfinite(maps["maps"]).all() and (maps["maps"] >= 0).all()
        for phrase in phrases:
            np.testing.assert_array_equal(maps[phrase["slug"]], maps["maps"][phrase["index"]])
            assert Image.open(folder / f"overlay_{phrase['slug']}.png").size[0] > 100
        assert Image.open(folder / "composite.png").size[0] > 400
        assert (folder / "report.txt").read_text().strip() == record["report"]

    scores = pd.read_csv(run_dir / "localisation_scores.csv")
    scored = scores[scores["scored"]]
    assert not scored.empty and set(scored["biomarker"]) <= {"drusen", "srf", "hrf", "shrm", "ped"}
    # rpe_elevation's mask is empty in the fixture: reported as unscored, with the reason.
    unscored = scores[~scores["scored"]]
    assert (unscored["biomarker"] == "rpe_elevation").all()
    assert unscored["reason"].str.contains("no lesion").all()
    summary = json.loads((run_dir / "localisation_summary.json").read_text())
    rows = {r["biomarker"]: r for r in summary["per_biomarker"]}
    assert "all" in rows and rows["all"]["phrases"] == len(scored)
    for row in rows.values():
        assert 0 <= row["energy_uniform"] <= 1 and 0 <= row["pointing_uniform"] <= 1
    assert result["summary"] == summary["per_biomarker"]
    check = summary["randomisation_check"]  # on by default: maps of a vision-randomised copy
    assert check["phrases"] > 0 and -1 <= check["mean_spearman"] <= 1
    assert check["randomised_energy_share"] is not None


def test_run_generates_reports_when_asked(tmp_path, saved_model):
    cfg = _config(tmp_path, saved_model, "dataset.task.max_images=1", "dataset.task.max_new_tokens=6",
                  "saliency.overlay.save=false")
    result = run_visual_language_gradcam(cfg)
    records = [json.loads(line) for line in (tmp_path / "run" / "reports.jsonl").read_text().splitlines()]
    assert len(records) == 1 and isinstance(records[0]["report"], str)
    assert result["images"] == 1
    folder = tmp_path / "run" / "images" / records[0]["image_id"]
    assert (folder / "maps.npz").is_file() and not (folder / "composite.png").exists()


def test_figures_only_for_the_first_images_but_maps_and_scores_for_all(tmp_path, saved_model):
    cfg = _config(tmp_path, saved_model, "dataset.task.report_source=annotation", "dataset.task.max_images=2",
                  "saliency.overlay.max_images=1", "saliency.sanity_check_images=0")
    result = run_visual_language_gradcam(cfg)
    records = [json.loads(line) for line in (tmp_path / "run" / "reports.jsonl").read_text().splitlines()]
    folders = [tmp_path / "run" / "images" / r["image_id"] for r in records]
    assert result["images"] == 2 and all((f / "maps.npz").is_file() for f in folders)
    assert [(f / "composite.png").exists() for f in folders] == [True, False]
    scored = pd.read_csv(tmp_path / "run" / "localisation_scores.csv")
    assert set(scored["image_id"]) == {r["image_id"] for r in records}


def test_api_models_are_refused_with_the_fix(tmp_path, saved_model):
    cfg = _config(tmp_path, saved_model, "pretrained_models=gpt-4o")
    with pytest.raises(ValueError, match="needs a local model"):
        run_visual_language_gradcam(cfg)


def test_the_seed_command_config_composes(tmp_path, saved_model):
    cfg = _config(tmp_path, saved_model)
    assert cfg.dataset.task.name == "language_visual_attention"
    assert cfg.dataset.task.split == "test" and cfg.dataset.task.report_source == "generate"
    assert cfg.pretrained_models.name == "specialist_v5_192px"
    assert list(cfg.saliency.gradcam.layer) == ["patch_embeddings", "auto"]
