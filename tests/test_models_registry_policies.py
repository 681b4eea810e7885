"""Registry resolution and trainable-part policies."""

import shutil
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from dataset.errors import ConfigError
from models import load_vlm
from support.configs import training_policy
from support.tiny_models import build_tiny_vlm
from models.policies import apply_trainable_policy, count_parameters, train_mode, unwrap_for_saving
from models.registry import (ModelNotFoundError, load_registry_entry, model_names, open_model, registry_names,
                             resolve_model)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
ENTRIES = sorted(p.stem for p in (CONFIGS / "pretrained_models").glob("*.yaml"))


def _entry(name, tmp_path):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="default", overrides=[f"paths.root_dir={CONFIGS.parent}",
                                                        f"paths.output_dir={tmp_path}", f"run_dir={tmp_path}",
                                                        f"pretrained_models={name}"])
    return OmegaConf.to_container(cfg.pretrained_models, resolve=True, throw_on_missing=False)


@pytest.mark.parametrize("name", ENTRIES)
def test_every_registry_entry_has_the_contract_fields(name, tmp_path):
    entry = _entry(name, tmp_path)
    assert entry["name"] == name
    assert entry["kind"] in ("new", "local", "openai")
    assert "created_by" in entry
    if entry["kind"] == "local":
        assert "path" in entry


def test_new_and_openai_entries_resolve_offline(tmp_path):
    assert resolve_model(_entry("new", tmp_path)).kind == "new"
    resolved = resolve_model(_entry("gpt-4o", tmp_path))
    assert resolved.kind == "openai" and resolved.options["model"] == "gpt-4o"


@pytest.mark.parametrize("name", ["retinavlm_base_192px", "specialist_v5_192px"])
def test_missing_trained_model_names_the_command_that_makes_it(name, tmp_path):
    with pytest.raises(ModelNotFoundError, match="run/vision_language_pretraining.py .*dataset/task=curriculum_part"):
        resolve_model(_entry(name, tmp_path))


def test_local_entry_without_path_asks_for_one(tmp_path):
    with pytest.raises(ValueError, match="pretrained_models.path="):
        resolve_model(_entry("llava_med_local", tmp_path))


def test_local_entry_resolves_to_its_directory(tiny_vlm_dir):
    resolved = resolve_model({"name": "mine", "kind": "local", "path": str(tiny_vlm_dir)})
    assert resolved.path == Path(tiny_vlm_dir)


def _run_config(tmp_path, *overrides):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name="closed_ended_evaluation", overrides=[
            f"paths.root_dir={CONFIGS.parent}", f"paths.output_dir={tmp_path}", f"run_dir={tmp_path}", *overrides])


def test_a_name_opens_its_entry_file_with_the_runs_paths_in_eval_mode(tmp_path, tiny_vlm_dir):
    folder = shutil.copytree(tiny_vlm_dir, tmp_path / "models" / "retinavlm_base_192px")
    cfg = _run_config(tmp_path, f"paths.model_dir={tmp_path / 'models'}")  # selects specialist_v5_192px
    assert load_registry_entry("retinavlm_base_192px", cfg).path == str(folder)
    model, processor = open_model("retinavlm_base_192px", cfg, device="cpu")
    assert not model.training and model.dtype == torch.float32 and processor.tokenizer is not None
    stock = load_vlm(folder, device="cpu")[0].state_dict()  # the saved weights, as transformers loads them
    assert all(torch.equal(tensor, stock[name]) for name, tensor in model.state_dict().items())


def test_the_selected_entry_keeps_its_command_line_overrides(tmp_path):
    cfg = _run_config(tmp_path, "pretrained_models=llava_med_local", "pretrained_models.path=/models/mine")
    assert load_registry_entry("llava_med_local", cfg).path == "/models/mine"
    assert model_names(cfg) == ["llava_med_local"]
    assert model_names(_run_config(tmp_path, "models=[new,gpt-4o]")) == ["new", "gpt-4o"]
    with pytest.raises(FileNotFoundError, match="known models: .*specialist_v5_192px"):
        load_registry_entry("no_such_model", cfg)


@pytest.mark.parametrize("name,what", [("gpt-4o", "an API endpoint"), ("new", "a fresh untrained build")])
def test_only_local_entries_open(name, what, tmp_path):
    with pytest.raises(ConfigError, match=f"{what} .*Grad-CAM needs a local model"):
        open_model(_entry(name, tmp_path), needs="Grad-CAM")


def test_registry_names_by_kind():
    local = registry_names(kind="local")
    assert "specialist_v5_192px" in local and "gpt-4o" not in local and "new" not in local
    assert registry_names() == ENTRIES  # file stems equal entry names


def _trainable_names(model):
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_full_policy_trains_everything_when_the_tower_is_included():
    model, _ = build_tiny_vlm()
    model = apply_trainable_policy(model, training_policy(name="full", train_vision_encoder=True))
    trainable, total = count_parameters(model)
    assert trainable == total


def test_full_policy_freezes_the_vision_tower_by_default():
    model, _ = build_tiny_vlm()
    names = _trainable_names(apply_trainable_policy(model, training_policy(name="full")))
    assert not any("vision_tower" in n for n in names)
    assert any("language_model" in n for n in names) and any("multi_modal_projector" in n for n in names)


def test_train_mode_keeps_frozen_batch_norms_in_eval_mode():
    model, _ = build_tiny_vlm()
    model = apply_trainable_policy(model, training_policy(name="full"))
    train_mode(model)
    norms = [m for m in model.model.vision_tower.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert norms and not any(m.training for m in norms)
    assert model.model.language_model.training and model.model.multi_modal_projector.training
    model = apply_trainable_policy(model, training_policy(name="full", train_vision_encoder=True))
    train_mode(model)
    assert all(m.training for m in norms)


def test_adapter_policy_trains_only_the_projector():
    model, _ = build_tiny_vlm()
    model = apply_trainable_policy(model, training_policy(name="adapter"))
    names = _trainable_names(model)
    assert names and all("multi_modal_projector" in n for n in names)


def test_adapter_policy_can_also_train_the_vision_tower():
    model, _ = build_tiny_vlm()
    policy = training_policy(name="adapter", train_vision_encoder=True)
    names = _trainable_names(apply_trainable_policy(model, policy))
    assert any("vision_tower" in n for n in names)
    assert not any("language_model" in n or "lm_head" in n for n in names)


def test_lora_policy_trains_projector_and_lora_only_and_merges_for_saving():
    model, _ = build_tiny_vlm()
    lora = {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]}
    model = apply_trainable_policy(model, training_policy(name="lora", lora=lora))
    names = _trainable_names(model)
    assert any("lora_" in n for n in names)
    assert all("lora_" in n or "multi_modal_projector" in n for n in names)
    assert all("language_model" in n for n in names if "lora_" in n)
    merged = unwrap_for_saving(model)
    assert not any("lora_" in n for n, _ in merged.named_parameters())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")
def test_eight_bit_policy_without_cuda_raises_clearly():
    model, _ = build_tiny_vlm()
    with pytest.raises(RuntimeError, match="load_in_8bit=true needs a CUDA GPU"):
        apply_trainable_policy(model, training_policy(name="adapter", load_in_8bit=True))


def test_unknown_policy_is_rejected():
    model, _ = build_tiny_vlm()
    with pytest.raises(ValueError, match="full"):
        apply_trainable_policy(model, training_policy(name="everything"))
