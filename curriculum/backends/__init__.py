"""LLM backends behind one interface (`LLMBackend`), built from a language-model config.

`build_backend(cfg.model.language_model, cfg.paths)` picks the implementation by the config's
`backend` field: `openai` (OpenAI or any OpenAI-compatible server), `local_hf` (a local Hugging
Face causal LM) or `rules` (offline, no LLM).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from curriculum.backends.base import (
    BackendError,
    BackendFatalError,
    ChatRequest,
    ChatResponse,
    LLMBackend,
    TokenUsage,
)

BACKENDS = ("openai", "local_hf", "rules")


def build_backend(language_model_cfg: Mapping[str, Any], paths_cfg: Mapping[str, Any] | None = None) -> LLMBackend:
    """The backend a `configs/model/language_model/<name>.yaml` config describes.

    Args:
        language_model_cfg: the config (`backend`, `model`, and the backend's settings).
        paths_cfg: the `paths` config, for `openai_api_key(_file)` and model folders.

    Raises:
        BackendError: unknown backend kind or unusable settings.
        dataset.secrets.MissingAPIKeyError: an API backend without a key.
    """
    kind = str(language_model_cfg["backend"]).strip()
    if kind == "openai":
        from curriculum.backends.openai_backend import build_openai_backend

        return build_openai_backend(language_model_cfg, paths_cfg)
    if kind == "local_hf":
        from curriculum.backends.local_hf import build_local_hf_backend

        return build_local_hf_backend(language_model_cfg)
    if kind == "rules":
        from curriculum.backends.rules import RulesBackend

        return RulesBackend(str(language_model_cfg["model"]))
    raise BackendError(f"model/language_model {language_model_cfg.get('name')!r}: unknown backend {kind!r}; "
                       f"use one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "BackendError", "BackendFatalError", "ChatRequest", "ChatResponse", "LLMBackend",
           "TokenUsage", "build_backend"]
