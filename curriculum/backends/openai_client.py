"""One way to open a client of the OpenAI API or an OpenAI-compatible server (vLLM, Ollama,
llama.cpp, `transformers serve`), shared by the curriculum backend (`openai_backend`) and the API
baselines under evaluation (`evaluation.vision_models.OpenAIVisionModel`).

The key comes from `dataset.secrets` (environment, `paths.openai_api_key` or
`paths.openai_api_key_file`) and is registered there for redaction. Retries are the official
client's own: timeouts, connection errors, 408/409/429 and 5xx, with exponential backoff.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import openai

from dataset.secrets import DEFAULT_KEY_ENV, require_api_key, resolve_api_key

# Sent where no key is needed: the client refuses to start without one.
NO_KEY = "not-needed"


def openai_api_key(paths_cfg: Mapping[str, Any] | None, env_var: str = DEFAULT_KEY_ENV,
                   required: bool = True, model: str = "this model") -> str:
    """The key to send to an OpenAI-compatible endpoint.

    Args:
        paths_cfg: the `paths` config (may be None).
        env_var: environment variable read first.
        required: whether a missing key is an error (api.openai.com) or not (a self-hosted server).
        model: the model's name, for the error message.

    Returns:
        The key, or `NO_KEY` when none is configured and none is required.

    Raises:
        MissingAPIKeyError: `required` and no key is configured, or the key file is missing or empty.
    """
    if required:
        return require_api_key(paths_cfg, env_var, model=model)
    return resolve_api_key(paths_cfg, env_var) or NO_KEY


def build_openai_client(api_key: str | None, base_url: str | None, timeout_s: float, max_retries: int,
                        asynchronous: bool = False,
                        http_client: Any = None) -> openai.OpenAI | openai.AsyncOpenAI:
    """An official OpenAI client for one endpoint.

    Args:
        api_key: the key (None or empty: `NO_KEY`, for servers that need none).
        base_url: server root ending in `/v1` (None or empty: api.openai.com).
        timeout_s: seconds before one attempt times out.
        max_retries: the client's retries per request for transient errors.
        asynchronous: an `AsyncOpenAI` client instead of a blocking `OpenAI` one.
        http_client: an httpx client to send through (e.g. with event hooks); None: the default.

    Returns:
        The client; an asynchronous one must be closed by the caller (`await client.close()`).
    """
    options: dict[str, Any] = {"api_key": api_key or NO_KEY, "base_url": base_url or None,
                               "timeout": timeout_s, "max_retries": max_retries}
    if http_client is not None:
        options["http_client"] = http_client
    return openai.AsyncOpenAI(**options) if asynchronous else openai.OpenAI(**options)
