"""Curriculum training of the VLM (two stages through `run/vision_language_pretraining.py`).

`run_vision_language_pretraining` is imported on first use: evaluation imports light helpers of
this package (`models.training.grounding`) and should not pay for the trainer's imports (peft,
accelerate, bitsandbytes: about a second per evaluation process).
"""

from __future__ import annotations

from typing import Any

__all__ = ["run_vision_language_pretraining"]


def __getattr__(name: str) -> Any:
    if name == "run_vision_language_pretraining":
        from models.training.pipeline import run_vision_language_pretraining

        return run_vision_language_pretraining
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
