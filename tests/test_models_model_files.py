"""Saved models are complete or absent: atomic saves, and a registry that checks the files."""

import shutil

import pytest

from support.tiny_models import build_tiny_vlm, save_tiny_vlm
from models import load_vlm, save_vlm
from models.model_files import IncompleteModelError, check_model_files
from models.registry import resolve_model


def _entry(path):
    return {"name": "mine", "kind": "local", "path": str(path),
            "created_by": "python run/vision_language_pretraining.py ..."}


@pytest.fixture()
def model_copy(tiny_vlm_dir, tmp_path):
    return shutil.copytree(tiny_vlm_dir, tmp_path / "model")


def test_a_complete_model_resolves(model_copy):
    assert resolve_model(_entry(model_copy)).path == model_copy


@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_a_truncated_weights_file_is_named(model_copy, keep):
    weights = model_copy / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(IncompleteModelError, match=r"pretrained_models=mine: weights file .*model.safetensors "
                                                   r"is damaged or truncated"):
        resolve_model(_entry(model_copy))


def test_a_weights_file_with_a_garbage_header_is_named(model_copy):
    (model_copy / "model.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(IncompleteModelError, match="damaged or truncated"):
        check_model_files(model_copy)


@pytest.mark.parametrize("remove, named", [
    (["tokenizer.json"], "the tokenizer"),
    (["model.safetensors"], "the weights"),
    (["preprocessor_config.json", "processor_config.json"], "the image processor"),
])
def test_missing_files_are_named_with_the_fix(model_copy, remove, named):
    for name in remove:
        (model_copy / name).unlink(missing_ok=True)
    with pytest.raises(IncompleteModelError, match=f"incomplete: missing {named}.*create it with "
                                                   "`python run/vision_language_pretraining.py"):
        resolve_model(_entry(model_copy))


def test_a_missing_shard_of_a_sharded_model_is_named(model_copy):
    (model_copy / "model.safetensors").rename(model_copy / "model-00001-of-00002.safetensors")
    (model_copy / "model.safetensors.index.json").write_text(
        '{"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}')
    with pytest.raises(IncompleteModelError, match="model-00002-of-00002.safetensors"):
        check_model_files(model_copy)


class _CrashingProcessor:
    """Stands in for a processor whose save is interrupted (disk full, a kill between files)."""

    def save_pretrained(self, folder):
        raise OSError(28, "No space left on device")


def test_a_crash_mid_save_keeps_the_previous_model_and_leaves_nothing_half_written(tmp_path):
    target = save_tiny_vlm(tmp_path / "models" / "specialist")
    before = (target / "model.safetensors").read_bytes()
    model, _ = build_tiny_vlm(seed=1)
    with pytest.raises(OSError, match="No space left"):
        save_vlm(model, _CrashingProcessor(), target)
    assert (target / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["specialist"]  # no staging folder left
    resolve_model(_entry(target))
    load_vlm(target, device="cpu")


def test_a_new_save_replaces_the_previous_model_whole(tmp_path):
    target = save_tiny_vlm(tmp_path / "specialist", seed=0)
    (target / "stale_extra_file.txt").write_text("from the previous save")
    before = (target / "model.safetensors").read_bytes()
    save_tiny_vlm(target, seed=1)
    assert (target / "model.safetensors").read_bytes() != before
    assert not (target / "stale_extra_file.txt").exists()
    assert sorted(p.name for p in target.parent.iterdir()) == ["specialist"]


def test_a_save_killed_between_its_renames_points_at_the_previous_model(tmp_path):
    target = save_tiny_vlm(tmp_path / "specialist")
    target.rename(tmp_path / ".specialist.previous-4242")  # what a kill between the renames leaves
    with pytest.raises(FileNotFoundError, match=r"a save was interrupted: the previous model is at "
                                                r".*\.specialist\.previous-4242; rename it"):
        resolve_model(_entry(target))
