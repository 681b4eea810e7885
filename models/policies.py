"""Trainable-part policies: which parameters of the VLM train.

- `full`: the whole LLM and the projector (the tiny default, whose LLM starts random).
- `adapter`: the projector only, LLM frozen (reference-faithful); with `load_in_8bit` the frozen
  LLM is quantised to int8 at load time (`models.quantization`), which needs CUDA and bitsandbytes.
- `lora`: the projector plus LoRA adapters (peft) on the LLM's `target_modules`.

Under every policy the vision tower trains only with `train_vision_encoder: true`. The reference
froze its pretrained encoder; the tiny default pretrains its tower on the scans first
(`models/training/vision_pretraining.py`) and then freezes it too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch

from dataset.errors import ConfigError
from models.quantization import (  # noqa: F401 - re-exported: callers import them from here
    EightBitUnavailableError,
    dequantize_for_saving,
    eight_bit_load_kwargs,
    is_8bit,
    require_8bit_support,
)

logger = logging.getLogger(__name__)

POLICIES = ("full", "adapter", "lora")


def apply_trainable_policy(model, policy_cfg: Mapping[str, Any]):
    """Freeze and wrap the model according to a policy.

    Args:
        model: a LlavaForConditionalGeneration.
        policy_cfg: `name` (full | adapter | lora), `train_vision_encoder` (bool),
            `load_in_8bit` (adapter), `lora` {r, alpha, dropout, target_modules}.

    Returns:
        The model to train (a peft model for `lora`).

    Raises:
        ValueError: unknown policy.
        EightBitUnavailableError: 8-bit requested without CUDA or bitsandbytes, with the `full`
            policy, or for a model that was not loaded in 8 bits (`models.quantization`).
    """
    name = policy_cfg["name"]
    if name not in POLICIES:
        raise ConfigError(f"training.policy.name={name!r} is unknown; use one of {POLICIES}")
    if policy_cfg["load_in_8bit"]:
        check_8bit_policy(policy_cfg)
        if not is_8bit(model):
            raise EightBitUnavailableError(
                "training.policy.load_in_8bit=true but the model's LLM is not 8-bit; load it with "
                "models.quantization.load_vlm_8bit / quantize_vlm_8bit (the training pipeline does)")
    model.requires_grad_(name == "full")
    model.model.multi_modal_projector.requires_grad_(True)
    model.model.vision_tower.requires_grad_(bool(policy_cfg["train_vision_encoder"]))
    if name == "lora":
        model = _wrap_lora(model, policy_cfg["lora"], policy_cfg["train_vision_encoder"])
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


def check_8bit_policy(policy_cfg: Mapping[str, Any]) -> None:
    """Check an 8-bit request before any model is loaded: CUDA, bitsandbytes, a frozen LLM.

    Raises:
        EightBitUnavailableError: no CUDA, no bitsandbytes, or the `full` policy (an int8 LLM
            cannot be trained; use `training=adapter_only` or `training=lora`).
    """
    require_8bit_support()
    if policy_cfg["name"] == "full":
        raise EightBitUnavailableError("training.policy.load_in_8bit=true freezes the LLM in 8 bits, which the "
                                       "'full' policy would train; use training=adapter_only (or lora)")


def _wrap_lora(model, lora_cfg: Mapping[str, Any], train_vision_encoder: bool):
    from peft import LoraConfig, get_peft_model

    targets = list(lora_cfg["target_modules"])
    # Restrict LoRA to the language model: vision towers may have layers with the same names.
    pattern = r".*language_model.*\.(" + "|".join(targets) + r")$"
    config = LoraConfig(r=int(lora_cfg["r"]), lora_alpha=int(lora_cfg["alpha"]),
                        lora_dropout=float(lora_cfg["dropout"]), target_modules=pattern,
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
    """The plain transformers model to save: LoRA merged into the base weights, an 8-bit LLM
    dequantised (so the saved model loads without bitsandbytes or CUDA)."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    return dequantize_for_saving(model)
