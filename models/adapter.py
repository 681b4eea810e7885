"""The adapter (projector) between vision features and the LLM, mapped onto LlavaConfig.

transformers' LLaVA projector is always `linear_2(act(linear_1(x)))`. `mlp2x_gelu` uses it as is;
`linear` sets the activation to identity, so the two layers compose to one linear map, as in the
reference (which used a single linear layer) while staying loadable by stock transformers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ADAPTER_ACTIVATIONS = {"linear": "linear", "mlp2x_gelu": "gelu"}


def adapter_config_options(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """LlavaConfig keyword arguments for a `configs/model/adapter/*.yaml` entry.

    Raises:
        ValueError: an unknown adapter name.
    """
    name = cfg["name"]
    if name not in ADAPTER_ACTIVATIONS:
        raise ValueError(f"model.adapter.name={name!r} is unknown; choose one of {sorted(ADAPTER_ACTIVATIONS)}")
    return {"projector_hidden_act": ADAPTER_ACTIVATIONS[name],
            "multimodal_projector_bias": bool(cfg["bias"])}
