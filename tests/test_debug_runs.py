"""`debug=default` shrinks every entry config, and every curriculum stage trains end to end under it."""

from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from models.training import run_vision_language_pretraining
from support.training import part_2_overrides, training_overrides, write_training_data

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
ENTRIES = sorted(p.stem for p in CONFIGS.glob("*.yaml") if p.stem != "default")
# Stage tasks: the dataset/task configs that choose their own training config.
STAGES = sorted(p.stem for p in (CONFIGS / "dataset" / "task").glob("*.yaml")
                if any(isinstance(d, dict) and next(iter(d)).startswith("override /training")
                       for d in yaml.safe_load(p.read_text()).get("defaults", [])))
PART_1, PART_2 = "curriculum_part_1_introduction_to_retina", "curriculum_part_2_advanced_retinal_specialism"


def _compose(config_name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides)


def _debug_values() -> dict[str, object]:
    """Dotted key -> value of every setting configs/debug/default.yaml shrinks."""
    values = OmegaConf.to_container(OmegaConf.load(CONFIGS / "debug" / "default.yaml"))
    values.pop("defaults")

    def flatten(node, prefix=""):
        for key, value in node.items():
            if isinstance(value, dict):
                yield from flatten(value, f"{prefix}{key}.")
            else:
                yield prefix + key, value
    return dict(flatten(values))


@pytest.mark.parametrize("config_name", ENTRIES)
def test_debug_shrinks_every_entry_config(config_name):
    plain, debug = _compose(config_name, []), _compose(config_name, ["debug=default"])
    assert debug.training == _compose(config_name, ["training=debug"]).training
    for key, value in _debug_values().items():
        before = OmegaConf.select(plain, key, default="absent")
        if before != "absent":  # a section this entry has
            assert OmegaConf.select(debug, key) == value and (before is None or before > value), key
    assert _compose(config_name, ["debug=default", "training=lora"]).training.policy.name == "lora"


@pytest.mark.parametrize("stage", STAGES)
def test_debug_wins_over_a_stage_training(stage):
    cfg = _compose("vision_language_pretraining", [f"dataset/task={stage}", "debug=default"])
    assert cfg.training == _compose("vision_language_pretraining", ["training=debug"]).training


@pytest.mark.slow
def test_every_stage_trains_end_to_end_under_debug(tmp_path):
    assert STAGES == [PART_1, PART_2], "a new stage config: run it here too"
    write_training_data(tmp_path)
    tiny = [o for o in training_overrides(tmp_path) if o != "training=debug"] + ["debug=default"]
    steps = int(_compose("vision_language_pretraining", ["training=debug"]).training.max_steps)

    part_1 = run_vision_language_pretraining(_compose("vision_language_pretraining", [
        *tiny, "pretrained_models=new", f"dataset/task={PART_1}"]))
    assert part_1["output_model"].endswith("retinavlm_base_192px") and part_1["steps"] == steps
    part_2 = run_vision_language_pretraining(_compose("vision_language_pretraining", [
        *tiny, "pretrained_models=retinavlm_base_192px", f"run_dir={tmp_path / 'run2'}",
        *part_2_overrides()]))
    assert part_2["output_model"].endswith("specialist_v5_192px") and part_2["steps"] == steps
    assert (Path(part_2["output_model"]) / "model.safetensors").is_file()
