"""Curriculum training of the VLM (two stages through `run/vision_language_pretraining.py`)."""

from models.training.pipeline import run_vision_language_pretraining

__all__ = ["run_vision_language_pretraining"]
