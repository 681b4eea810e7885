"""Which floating-point precision a model computes in, for training and for inference.

One vocabulary for both (accelerate's): `no` (float32), `bf16`, `fp16` (CUDA only) and `auto`,
bf16 autocast over float32 weights where the machine computes in bf16 natively, else float32.
Training passes the resolved value to accelerate (`models.training.settings`); evaluation wraps
its option scoring in `autocast` (`evaluation.vision_models.LocalVisionModel`; generation stays
float32). The weights stay float32 either way, so a saved model does not depend on the setting.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from dataset.errors import ConfigError

#: the settings `training.mixed_precision` and `evaluation.generation.mixed_precision` take.
MIXED_PRECISIONS = ("no", "bf16", "fp16", "auto")
_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def native_bf16() -> bool:
    """Whether this machine computes in bfloat16 natively: a CUDA GPU with bf16, or a CPU with
    AVX512-BF16 or AMX. Elsewhere torch emulates bf16 on the CPU, slower than float32."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    # Private probes of torch.cpu (a missing one counts as no support).
    return any(getattr(torch.cpu, probe, lambda: False)()
               for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


def resolve_mixed_precision(setting: str, key: str = "training.mixed_precision") -> str:
    """The precision a setting means on this machine: `auto` is `bf16` where the hardware computes
    in bf16 natively (`native_bf16`), else `no`; the other values pass through. On 2 AVX512-BF16
    cores a training step of the embedded default ran 1.4 (100 tokens) to 1.6 (310 tokens) times
    as fast under bf16 (`benchmarks/training_throughput.py --compare-autocast`; docs/experiments.md,
    "bf16 training").

    Raises:
        ConfigError: an unknown setting, named by `key`.
    """
    setting = str(setting)
    if setting not in MIXED_PRECISIONS:
        raise ConfigError(f"{key} must be one of {', '.join(MIXED_PRECISIONS)}, got {setting!r}")
    if setting == "auto":
        return "bf16" if native_bf16() else "no"
    return setting


@contextlib.contextmanager
def autocast(precision: str, device: torch.device | str) -> Iterator[None]:
    """Run the block's forward passes in a resolved precision (`no`, `bf16` or `fp16`) on `device`.

    Raises:
        ConfigError: fp16 asked for on a CPU (torch computes fp16 there slowly, if at all).
    """
    if precision == "no":
        yield
        return
    device_type = torch.device(device).type
    if precision == "fp16" and device_type != "cuda":
        raise ConfigError("mixed_precision=fp16 needs a CUDA device; use bf16, auto or no on a CPU")
    with torch.autocast(device_type=device_type, dtype=_AUTOCAST_DTYPES[precision]):
        yield
