"""The reference's frozen 8-bit LLM: a VLM whose language model is quantised to int8 with
bitsandbytes on a CUDA GPU, while the projector (trained) and the vision tower stay in float32.

`training.policy.load_in_8bit=true` loads the starting model this way (`load_vlm_8bit` for a
saved model; `quantize_vlm_8bit` for a fresh `new` build, through a temporary folder so that
transformers' own bitsandbytes loader does the quantising). Saving dequantises the LLM again
(`dequantize_for_saving`), so the saved model loads anywhere, without bitsandbytes or CUDA.
"""

from __future__ import annotations

import importlib.util
import logging
import tempfile
from pathlib import Path
from typing import Any

import torch

from dataset.errors import SpecialistVLMError

logger = logging.getLogger(__name__)

# Kept in full precision: small, and the projector is what trains.
SKIP_MODULES = ["multi_modal_projector", "vision_tower", "lm_head"]
PIP_COMMAND = "pip install bitsandbytes"


class EightBitUnavailableError(SpecialistVLMError, RuntimeError):
    """8-bit loading was asked for where it cannot work (no CUDA, no bitsandbytes, wrong policy)."""


def require_8bit_support() -> None:
    """Raise unless an 8-bit LLM can be loaded here.

    Raises:
        EightBitUnavailableError: no CUDA device or bitsandbytes not installed; says what to change.
    """
    if not torch.cuda.is_available():
        raise EightBitUnavailableError(
            "training.policy.load_in_8bit=true needs a CUDA GPU; none is available. "
            "Set training.policy.load_in_8bit=false to train in full precision.")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise EightBitUnavailableError(
            f"training.policy.load_in_8bit=true needs the bitsandbytes package (`{PIP_COMMAND}`), "
            "or set training.policy.load_in_8bit=false.")


def eight_bit_load_kwargs() -> dict[str, Any]:
    """`from_pretrained` keyword arguments for an 8-bit frozen LLM on the current CUDA device."""
    from transformers import BitsAndBytesConfig

    return {"quantization_config": BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=SKIP_MODULES),
            "device_map": {"": torch.cuda.current_device()}, "dtype": torch.float32}


def load_vlm_8bit(path: str | Path):
    """Load a saved VLM with its language model in 8 bits on CUDA.

    Args:
        path: a Hugging Face image-text-to-text directory.

    Returns:
        The model (train mode is the caller's choice; every parameter is frozen by the policy).

    Raises:
        EightBitUnavailableError: no CUDA or no bitsandbytes.
    """
    from transformers import AutoModelForImageTextToText

    require_8bit_support()
    model = AutoModelForImageTextToText.from_pretrained(path, use_safetensors=True, trust_remote_code=False,
                                                        **eight_bit_load_kwargs())
    logger.info("loaded %s with an 8-bit language model (%.2f GB on the GPU)", path,
                model.get_memory_footprint() / 1e9)
    return model


def quantize_vlm_8bit(model, processor):
    """An in-memory VLM with its language model quantised to 8 bits (through a temporary save).

    Raises:
        EightBitUnavailableError: no CUDA or no bitsandbytes.
    """
    require_8bit_support()
    with tempfile.TemporaryDirectory(prefix="vlm_8bit_") as folder:
        model.save_pretrained(folder, safe_serialization=True)
        processor.save_pretrained(folder)
        return load_vlm_8bit(folder)


def is_8bit(model) -> bool:
    """Whether a (possibly wrapped) model holds bitsandbytes 8-bit layers."""
    return any(type(m).__name__ == "Linear8bitLt" for m in model.modules())


def dequantize_for_saving(model):
    """The model with its 8-bit layers turned back into float ones (unchanged if not 8-bit).

    The saved LLM then carries the int8 rounding the adapter was trained against, in float.
    """
    if not is_8bit(model):
        return model
    return model.dequantize(dtype=torch.float32)
