"""Model cards: written at training, refreshed by closed-ended evaluation, harmless to stock loading."""

import json
import shutil

import pandas as pd
import pytest
import yaml
from omegaconf import OmegaConf

from evaluation.model_cards import evaluation_entries
from evaluation.scoring import MAJORITY
from models.model_card import (CARD_DATA_FILE, CARD_FILE, calibration_biases, load_card_data,
                               record_evaluation, write_training_card)


def _front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def _table(n: int = 10) -> pd.DataFrame:
    splits = ["train"] * 6 + ["validation"] * 2 + ["test"] * 2
    return pd.DataFrame({"image_id": [f"i{k}" for k in range(n)],
                         "patient_id": [f"p{k // 2}" for k in range(n)], "split": splits[:n]})


def _cfg(tmp_path, start: dict, task_name: str = "curriculum_part_1_introduction_to_retina") -> dict:
    return OmegaConf.create({
        "seed": 3, "pretrained_models": start,
        "dataset": {"annotations_file": str(tmp_path / "data" / "annotations.csv"),
                    "task": {"name": task_name,
                             "curricula": {"tabular_annotate_rules": 1.0, "2_specific_qa": 0.5}}},
        "training": {"batch_size": 4, "learning_rate": 1e-3, "policy": {"name": "full"}},
        "model": {"vision_encoder": {"name": "tiny_levit", "kind": "levit"}, "adapter": {"name": "linear"},
                  "text_decoder": {"name": "tiny_llama", "kind": "llama"}},
    })


SUMMARY = {"steps": 7, "train_examples": 30, "wall_time_s": 1.5, "total_parameters": 2_500_000,
           "trainable_parameters": 2_000_000, "vision_pretraining": {"steps": 2}}


def test_training_card_follows_the_hub_convention_and_stock_transformers_still_loads(tmp_path, tiny_vlm_dir):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model_dir = tmp_path / "retinavlm_base_192px"
    shutil.copytree(tiny_vlm_dir, model_dir)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "summary.json").write_text(json.dumps({"split_patients": {}, "num_eyes": 1,
                                                                 "stages": {}, "seed": 11}))
    card = write_training_card(model_dir, _cfg(tmp_path, {"name": "new", "kind": "new"}), _table(), SUMMARY,
                               {"tabular_annotate_rules": 20, "2_specific_qa": 10})
    assert card == model_dir / CARD_FILE
    text = card.read_text()
    header = _front_matter(text)
    assert header["pipeline_tag"] == "image-text-to-text" and header["library_name"] == "transformers"
    assert header["license"] and "synthetic-data" in header["tags"] and "research-only" in header["tags"]
    assert "Research use only" in text and "not a medical device" in text
    assert "synthetic OCT phantom" in text and "generator seed 11" in text
    assert "10 images of 5 patients (test 2, train 6, validation 2)" in text
    assert "`tabular_annotate_rules` (1, 20)" in text and "| 7 | 4 |" in text
    assert "No closed-ended evaluation" in text
    assert 'pipeline("image-text-to-text", model="path/to/retinavlm_base_192px")' in text
    # The folder still loads with stock transformers, and the card files are not model files.
    AutoModelForImageTextToText.from_pretrained(model_dir)
    AutoProcessor.from_pretrained(model_dir)

    # Part 2 from this model: its card lists both stages; user data is not called phantom.
    (tmp_path / "data" / "summary.json").unlink()
    specialist = tmp_path / "specialist_v5_192px"
    shutil.copytree(tiny_vlm_dir, specialist)
    start = {"name": "retinavlm_base_192px", "kind": "local", "path": str(model_dir)}
    write_training_card(specialist, _cfg(tmp_path, start, "curriculum_part_2_advanced_retinal_specialism"),
                        _table(), SUMMARY, {"2_specific_qa": 10})
    data = load_card_data(specialist)
    assert [s["task"] for s in data["stages"]] == ["curriculum_part_1_introduction_to_retina",
                                                   "curriculum_part_2_advanced_retinal_specialism"]
    assert data["stages"][1]["started_from"] == "retinavlm_base_192px"
    text = (specialist / CARD_FILE).read_text()
    assert "user's **annotation table**" in text and "synthetic-data" not in _front_matter(text)["tags"]


def _metrics(value: float) -> dict:
    return {name: {"value": value, "ci_low": value - 0.1, "ci_high": value + 0.05}
            for name in ("accuracy", "macro_f1", "reference_f1", "invalid_rate")}


def test_evaluation_refreshes_the_card_and_keeps_the_latest_biases(tmp_path):
    counts = {"task": "staging", "n_images": 40, "n_patients": 20}
    results = [{"model": "specialist", **counts, "metrics": _metrics(0.6)},
               {"model": "other", **counts, "metrics": _metrics(0.2)},
               {"model": MAJORITY, **counts, "metrics": _metrics(0.3)},
               {"model": "specialist+calibrated", **counts, "metrics": _metrics(0.65)}]
    extra = {"answer_mode": "likelihood", "split": "test",
             "calibration": {"split": "validation", "objective": "macro_f1",
                             "option_biases": {"specialist": {"staging": {"healthy": 0.0, "early": 0.25}}}}}
    entries = evaluation_entries("specialist", results, extra, tmp_path / "run", option_score="sum")
    assert set(entries) == {"staging"} and entries["staging"]["majority_class"]["accuracy"]["value"] == 0.3
    assert entries["staging"]["calibrated_metrics"]["accuracy"]["value"] == 0.65
    model_dir = tmp_path / "specialist"
    record_evaluation(model_dir, "staging", entries["staging"])
    text = (model_dir / CARD_FILE).read_text()
    assert "| staging | accuracy | 0.600 | [0.500, 0.650] | 0.300 | 40 (test) | likelihood | no |" in text
    calibrated = ("| staging | accuracy | 0.650 | [0.550, 0.700] | 0.300 | 40 (test) | likelihood | "
                  "on validation |")
    assert calibrated in text
    assert calibration_biases(model_dir) == {"staging": {"healthy": 0.0, "early": 0.25}}
    assert calibration_biases(model_dir, "sum") == calibration_biases(model_dir)
    assert calibration_biases(model_dir, "mean") == {}  # offsets on another scale do not apply

    # A later evaluation of the same task replaces the earlier one; another task is added beside it.
    later = dict(entries["staging"], metrics=_metrics(0.7), option_biases=None)
    record_evaluation(model_dir, "staging", later)
    record_evaluation(model_dir, "referral", dict(entries["staging"], metrics=_metrics(0.8)))
    text = (model_dir / CARD_FILE).read_text()
    assert "| staging | accuracy | 0.700 |" in text and "| staging | accuracy | 0.600 |" not in text
    assert "| referral | accuracy | 0.800 |" in text
    assert calibration_biases(model_dir) == {"referral": {"healthy": 0.0, "early": 0.25}}


def test_a_corrupt_card_file_is_named(tmp_path):
    (tmp_path / CARD_DATA_FILE).write_text("{not json")
    with pytest.raises(ValueError, match=CARD_DATA_FILE):
        load_card_data(tmp_path)
    assert calibration_biases(tmp_path) == {}


def test_evaluation_keeps_a_card_this_toolkit_did_not_write(tmp_path):
    """A Hub folder (or the RetinaVLM import) keeps its own card; evaluation only writes its section."""
    entry = {"metrics": _metrics(0.6), "n_images": 40, "split": "test", "answer_mode": "likelihood"}
    model_dir = tmp_path / "llava-med"
    model_dir.mkdir()
    own = "---\nlicense: apache-2.0\nlibrary_name: transformers\n---\n# LLaVA-Med\n\nThe authors' card.\n"
    (model_dir / CARD_FILE).write_text(own)
    record_evaluation(model_dir, "staging", entry)
    record_evaluation(model_dir, "staging", dict(entry, metrics=_metrics(0.7)))
    record_evaluation(model_dir, "referral", entry)
    text = (model_dir / CARD_FILE).read_text()
    assert text.startswith(own) and _front_matter(text)["license"] == "apache-2.0"
    assert text.count("## Evaluation") == 1 and "Research use only" in text
    assert "| staging | accuracy | 0.700 |" in text and "| staging | accuracy | 0.600 |" not in text
    assert "| referral | accuracy | 0.600 |" in text and "trained with" not in text

    # Text the owner adds after our section survives the next refresh.
    (model_dir / CARD_FILE).write_text(text + "\n## Citation\n\n@article{x}\n")
    record_evaluation(model_dir, "referral", dict(entry, metrics=_metrics(0.8)))
    text = (model_dir / CARD_FILE).read_text()
    assert text.startswith(own) and text.rstrip().endswith("@article{x}")
    assert "| referral | accuracy | 0.800 |" in text

    # A folder that came without a card gets one that claims no training it did not see.
    bare = tmp_path / "bare"
    record_evaluation(bare, "staging", entry)
    text = (bare / CARD_FILE).read_text()
    assert _front_matter(text)["pipeline_tag"] == "image-text-to-text" and "evaluated, not trained" in text
    assert "| staging | accuracy | 0.600 |" in text and "curricula" not in text and "phantom seed" not in text
