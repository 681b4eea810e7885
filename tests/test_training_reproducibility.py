"""The same seed trains the same model: bit-identical weights and losses, whatever else lies in the
curriculum folder."""

import json
import shutil
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from safetensors.torch import load_file

from dataset.qa_records import QARecord, append_records
from support.training import training_overrides, write_training_data
from models.training import run_vision_language_pretraining

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _train(root: Path) -> tuple[dict, dict]:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="vision_language_pretraining", overrides=training_overrides(
            root, ["training.max_steps=6", "training.vision_pretraining.steps=4"]))
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
