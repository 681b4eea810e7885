"""The image-reliance gap: training logs it per module, it grows when answers depend on the scan,
and it is exactly zero for a model that cannot see the image."""

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from support.training import PART_1, training_overrides, write_training_data
from models import load_vlm
from models.training import run_vision_language_pretraining
from models.training.collate import QACollator
from models.training.grounding import GroundingTally, swapped_order, tally_batch

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _compose(overrides):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name="vision_language_pretraining", overrides=overrides)


@pytest.mark.parametrize("image_ids", [
    ["a", "b", "c", "d"],
    ["a", "a", "a", "b", "b", "c"],      # one scan asked several questions
    ["a", "a", "b", "b"],
])
def test_every_example_gets_another_scan(image_ids):
    order = swapped_order(image_ids)
    assert sorted(order) == list(range(len(image_ids)))  # a permutation: every image is used once
    assert all(image_ids[order[i]] != image_ids[i] for i in range(len(image_ids)))


def test_a_batch_of_one_scan_keeps_it():
    assert sorted(swapped_order(["a", "a"])) == [0, 1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The tiny model trained 80 steps (after 30 of vision pretraining) on answers that a bright band in the scan decides."""
    root = tmp_path_factory.mktemp("grounding")
    write_training_data(root)
    summary = run_vision_language_pretraining(_compose(training_overrides(root, [
        "training.max_steps=80", "training.eval_every=40", "training.batch_size=8",
        "training.max_eval_samples=16", "training.learning_rate=3e-3", "training.checkpoint_every=80",
        "training.vision_pretraining.steps=30", "model.vision_encoder.depths=[0,0]"])))
    return root, summary


def test_training_logs_a_clearly_positive_gap_per_module(trained):
    root, summary = trained
    steps = [entry["step"] for entry in summary["grounding"]]
    assert steps == [40, 80]
    last = summary["grounding"][-1]
    assert set(last) == {"step", "all", PART_1}
    assert last["all"]["gap"] == pytest.approx(last["all"]["swapped_loss"] - last["all"]["loss"])
    assert last["all"]["loss"] == pytest.approx(summary["eval_loss"][-1][1])
    # The answer's first word (yes / no) is the image's to decide: with another scan it is wrong.
    assert last[PART_1]["gap"] > 0.05, last
    assert "eval/grounding_gap" in (root / "run" / "metrics.csv").read_text()


def _validation_batch(root, processor):
    from PIL import Image

    images = sorted((root / "data" / "images").glob("*.png"))[:8]
    items = [{"image": Image.open(p).convert("RGB").crop((32, 8, 224, 200)), "question": "Are there drusen?",
              "answer": "Yes, drusen are present." if int(p.stem[-3:]) % 2 else "No, there are no drusen."}
             for p in images]
    return QACollator(processor, 128)(items), [p.stem for p in images]


def test_a_model_blind_to_the_image_has_no_gap(trained):
    root, summary = trained
    model, processor = load_vlm(summary["output_model"], device="cpu")
    batch, image_ids = _validation_batch(root, processor)
    seeing = GroundingTally(["m"])
    tally_batch(model, batch, image_ids, ["m"] * len(image_ids), seeing)
    assert seeing.summary()["all"]["gap"] > 0.05

    with torch.no_grad():  # a zeroed projector passes nothing of the image to the language model
        for parameter in model.model.multi_modal_projector.parameters():
            parameter.zero_()
    blind = GroundingTally(["m"])
    tally_batch(model, batch, image_ids, ["m"] * len(image_ids), blind)
    assert blind.summary()["all"]["gap"] == pytest.approx(0.0, abs=1e-6)
    assert blind.summary()["all"]["loss"] > seeing.summary()["all"]["loss"]
