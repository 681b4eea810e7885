"""Trainable-part policies: which parameters of the VLM train.

- `full`: the whole LLM and the projector (the tiny default, whose LLM starts random).
- `adapter`: the projector only, LLM frozen (reference-faithful); with `load_in_8bit` the frozen
  LLM is quantised, which needs CUDA and bitsandbytes.
- `lora`: the projector plus LoRA adapters (peft) on the LLM's `target_modules`.

Under every policy the vision tower trains only with `train_vision_encoder: true`. The reference
froze its pretrained encoder; the tiny default pretrains its tower on the scans first
(`models/training/vision_pretraining.py`) and then freezes it too.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping
from typing import Any

import torch

logger = logging.getLogger(__name__)

POLICIES = ("full", "adapter", "lora")


def apply_trainable_policy(model, policy_cfg: Mapping[str, Any]):
    """Freeze and wrap the model according to a policy.

    Args:
        model: a LlavaForConditionalGeneration.
        policy_cfg: `name` (full | adapter | lora), `train_vision_encoder` (bool, default false),
            `load_in_8bit` (adapter), `lora` {r, alpha, dropout, target_modules}.

    Returns:
        The model to train (a peft model for `lora`).

    Raises:
        ValueError: unknown policy.
        RuntimeError: 8-bit requested without CUDA or bitsandbytes.
    """
    name = policy_cfg.get("name", "full")
    if name not in POLICIES:
        raise ValueError(f"training.policy.name={name!r} is unknown; use one of {POLICIES}")
    if policy_cfg.get("load_in_8bit", False):
        require_8bit_support()
    model.requires_grad_(name == "full")
    model.model.multi_modal_projector.requires_grad_(True)
    model.model.vision_tower.requires_grad_(bool(policy_cfg.get("train_vision_encoder", False)))
    if name == "lora":
        model = _wrap_lora(model, policy_cfg.get("lora", {}), policy_cfg.get("train_vision_encoder", False))
    trainable, total = count_parameters(model)
    logger.info("policy %s: %s of %s parameters trainable (%.1f%%)", name, f"{trainable:,}", f"{total:,}",
                100.0 * trainable / max(total, 1))
    return model


def train_mode(model) -> None:
    """Put `model` in train mode, but keep frozen normalisation layers in eval mode.

    A frozen (e.g. pretrained) vision tower's batch-norm statistics must not drift with the
    training batches, or the features the adapter learnt to read would change under it.
    """
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and \
                not any(p.requires_grad for p in module.parameters()):
            module.eval()


def require_8bit_support() -> None:
    """Raise unless an 8-bit LLM can be loaded here.

    Raises:
        RuntimeError: no CUDA device or bitsandbytes not installed; says what to change.
    """
    if not torch.cuda.is_available():
        raise RuntimeError("training.policy.load_in_8bit=true needs a CUDA GPU; none is available. "
                           "Set training.policy.load_in_8bit=false to train in full precision.")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise RuntimeError("training.policy.load_in_8bit=true needs the bitsandbytes package "
                           "(`pip install bitsandbytes`), or set training.policy.load_in_8bit=false.")


def eight_bit_load_kwargs() -> dict[str, Any]:
    """`from_pretrained` keyword arguments for an 8-bit frozen LLM (after `require_8bit_support`)."""
    from transformers import BitsAndBytesConfig

    # The projector and vision tower stay in full precision: they are small and (partly) trained.
    return {"quantization_config": BitsAndBytesConfig(
        load_in_8bit=True, llm_int8_skip_modules=["multi_modal_projector", "vision_tower", "lm_head"])}


def _wrap_lora(model, lora_cfg: Mapping[str, Any], train_vision_encoder: bool):
    from peft import LoraConfig, get_peft_model

    targets = list(lora_cfg.get("target_modules", ["q_proj", "k_proj", "v_proj", "o_proj"]))
    # Restrict LoRA to the language model: vision towers may have layers with the same names.
    pattern = r".*language_model.*\.(" + "|".join(targets) + r")$"
    config = LoraConfig(r=int(lora_cfg.get("r", 16)), lora_alpha=int(lora_cfg.get("alpha", 32)),
                        lora_dropout=float(lora_cfg.get("dropout", 0.05)), target_modules=pattern,
                        bias="none")
    peft_model = get_peft_model(model, config)
    # get_peft_model freezes everything but LoRA; the projector (and maybe the tower) train too.
    peft_model.base_model.model.model.multi_modal_projector.requires_grad_(True)
    if train_vision_encoder:
        peft_model.base_model.model.model.vision_tower.requires_grad_(True)
    return peft_model


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def unwrap_for_saving(model):
    """The plain transformers model to save: LoRA merged into the base weights."""
    if hasattr(model, "merge_and_unload"):
        return model.merge_and_unload()
    return model
