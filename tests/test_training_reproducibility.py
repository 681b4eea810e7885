"""The same seed trains the same model: bit-identical weights and losses, whatever else lies in the
curriculum folder."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from safetensors.torch import load_file

from dataset.qa_records import QARecord, append_records
from support.training import training_overrides, write_training_data
from models.training import run_vision_language_pretraining

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _train(root: Path, *overrides: str) -> tuple[dict, dict]:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="vision_language_pretraining", overrides=training_overrides(
            root, ["training.max_steps=6", "training.vision_pretraining.steps=4", *overrides]))
    summary = run_vision_language_pretraining(cfg)
    weights = load_file(str(Path(summary["output_model"]) / "model.safetensors"))
    return summary, weights


def test_same_seed_same_weights_and_losses_even_with_another_store_beside(tmp_path):
    first_root, second_root = tmp_path / "first", tmp_path / "second"
    write_training_data(first_root)
    shutil.copytree(first_root, second_root)
    # A store the part-1 task does not name (e.g. the demo curriculum) must not reach the
    # tokenizer: it used to change the vocabulary and so every trained weight.
    append_records(second_root / "curriculum" / "demo_curriculum" / "records.jsonl", [
        QARecord(QARecord.make_id("scan000", "demo", k), "scan000", "demo_curriculum",
                 "Describe the hyperreflective subretinal material.", "Zebra quokka axolotl " * 5, "rules", "rules", "v1")
        for k in range(50)])

    first, first_weights = _train(first_root)
    second, second_weights = _train(second_root)
    assert first_weights.keys() == second_weights.keys()
    assert all(torch.equal(first_weights[k], second_weights[k]) for k in first_weights)
    assert json.dumps(first["train_loss"]) == json.dumps(second["train_loss"])
    assert json.dumps(first["grounding"]) == json.dumps(second["grounding"])
    tokenizer = (Path(first["output_model"]) / "tokenizer.json").read_text()
    assert tokenizer == (Path(second["output_model"]) / "tokenizer.json").read_text()
    assert "quokka" not in tokenizer


@pytest.mark.slow
def test_how_often_validation_runs_does_not_change_the_weights(tmp_path):
    """Validation (loss and image-reliance gap) draws no training randomness, so its frequency is
    a speed setting only."""
    often, rarely = tmp_path / "often", tmp_path / "rarely"
    write_training_data(often)
    shutil.copytree(often, rarely)
    first, first_weights = _train(often, "training.eval_every=1")
    second, second_weights = _train(rarely, "training.eval_every=6")
    assert [g["step"] for g in first["grounding"]] == [1, 2, 3, 4, 5, 6]
    assert [g["step"] for g in second["grounding"]] == [6]
    assert all(torch.equal(first_weights[k], second_weights[k]) for k in first_weights)
    assert json.dumps(first["train_loss"]) == json.dumps(second["train_loss"])
