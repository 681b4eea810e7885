"""Checks of the training settings before any data is read or model built, so a bad value stops
`run/vision_language_pretraining.py` with one line naming the key instead of training zero steps
or dividing by zero at the first log step."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dataset.setting_checks import check_number
from models.precision import resolve_mixed_precision

# key -> (whole number?, lowest allowed value)
_BOUNDS = {"max_steps": (True, 1), "batch_size": (True, 1), "gradient_accumulation_steps": (True, 1),
           "warmup_steps": (True, 0), "max_length": (True, 1), "log_every": (True, 1),
           "eval_every": (True, 1), "eval_batch_size": (True, 1), "max_eval_samples": (True, 0),
           "checkpoint_every": (True, 1), "keep_checkpoints": (True, 1), "num_workers": (True, 0),
           "learning_rate": (False, 0.0), "weight_decay": (False, 0.0), "max_grad_norm": (False, 0.0),
           "stage_balance": (False, 0.0)}
_VISION_BOUNDS = {"steps": (True, 0), "batch_size": (True, 1), "learning_rate": (False, 0.0),
                  "warmup_steps": (True, 0), "log_every": (True, 1), "biomarker_weight": (False, 0.0),
                  "biomarker_balance": (False, 0.0)}


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
    if train_cfg.get("average_last") is not None:
        check_number(train_cfg["average_last"], "training.average_last", low=0.0, high=1.0)
