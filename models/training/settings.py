"""Checks of the training settings before any data is read or model built, so a bad value stops
`run/vision_language_pretraining.py` with one line naming the key instead of training zero steps
or dividing by zero at the first log step."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from dataset.errors import ConfigError
from dataset.setting_checks import check_number

# key -> (whole number?, lowest allowed value)
_BOUNDS = {"max_steps": (True, 1), "batch_size": (True, 1), "gradient_accumulation_steps": (True, 1),
           "warmup_steps": (True, 0), "max_length": (True, 1), "log_every": (True, 1),
           "eval_every": (True, 1), "eval_batch_size": (True, 1), "max_eval_samples": (True, 0),
           "checkpoint_every": (True, 1), "keep_checkpoints": (True, 1), "num_workers": (True, 0),
           "learning_rate": (False, 0.0), "weight_decay": (False, 0.0), "max_grad_norm": (False, 0.0)}
_VISION_BOUNDS = {"steps": (True, 0), "batch_size": (True, 1), "learning_rate": (False, 0.0),
                  "warmup_steps": (True, 0), "log_every": (True, 1), "biomarker_weight": (False, 0.0),
                  "biomarker_balance": (False, 0.0)}


#: `training.mixed_precision`: accelerate's three settings, and `auto` (see `resolve_mixed_precision`).
MIXED_PRECISIONS = ("no", "bf16", "fp16", "auto")


def native_bf16() -> bool:
    """Whether this machine computes in bfloat16 natively: a CUDA GPU with bf16, or a CPU with
    AVX512-BF16 or AMX. Elsewhere torch emulates bf16 on the CPU, slower than float32."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    # Private probes of torch.cpu (a missing one counts as no support).
    return any(getattr(torch.cpu, probe, lambda: False)()
               for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


def resolve_mixed_precision(setting: str) -> str:
    """accelerate's precision for `training.mixed_precision`: `auto` is bf16 autocast (float32
    weights) where the hardware computes in bf16 natively (`native_bf16`), else "no"; the other
    values pass through. The curriculum stages use `auto`: on 2 AVX512-BF16 cores a training step of
    the embedded default ran 1.4 (100 tokens) to 1.6 (310 tokens) times as fast under bf16
    (`benchmarks/training_throughput.py --compare-autocast`; docs/experiments.md, "bf16 training")."""
    setting = str(setting)
    if setting not in MIXED_PRECISIONS:
        raise ConfigError(f"training.mixed_precision must be one of {', '.join(MIXED_PRECISIONS)}, got {setting!r}")
    if setting == "auto":
        return "bf16" if native_bf16() else "no"
    return setting


def check_training_settings(train_cfg: Mapping[str, Any]) -> None:
    """Check the numeric `training.*` settings (and `training.vision_pretraining.*`) and the
    precision.

    Raises:
        ConfigError: the first bad value, e.g. `training.max_steps must be >= 1, got -1`.
    """
    resolve_mixed_precision(train_cfg.get("mixed_precision", "no"))
    for section, bounds, prefix in ((train_cfg, _BOUNDS, "training"),
                                    (train_cfg.get("vision_pretraining") or {}, _VISION_BOUNDS,
                                     "training.vision_pretraining")):
        for key, (integer, low) in bounds.items():
            if key in section:
                check_number(section[key], f"{prefix}.{key}", integer=integer, low=low)
