"""OpenAI chat models and any OpenAI-compatible server (vLLM, Ollama, llama.cpp, `transformers serve`).

Concurrency is bounded by an asyncio semaphore over the official `AsyncOpenAI` client. Retries
are the client's own: it retries timeouts, connection errors, 408/409/429 and 5xx with
exponential backoff and honours `Retry-After`; 400/401/403/404/422 are not retried and stop the
run at once. Errors are re-raised as our own exceptions built from status codes only, so no
server text that could echo the key (OpenAI's 401 body quotes part of it) reaches a message.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

import openai

from curriculum.backends.base import BackendError, BackendFatalError, ChatRequest, ChatResponse, TokenUsage
from curriculum.backends.openai_client import build_openai_client, openai_api_key
from dataset.secrets import redact

logger = logging.getLogger(__name__)
# httpx logs one INFO line per request; with thousands of requests that drowns the run log.
logging.getLogger("httpx2").setLevel(logging.WARNING)
logging.getLogger("httpx").setLevel(logging.WARNING)

_FATAL_HINTS = {
    400: "the server rejected the request as malformed; check model/language_model settings "
         "(e.g. structured_output=none for servers without JSON mode) and max_tokens",
    401: "authentication failed; check the key in OPENAI_API_KEY (or paths.openai_api_key_file)",
    403: "permission denied; the key has no access to this model or project",
    404: "not found; check model/language_model.model and base_url",
    422: "the server could not process the request; check the model's settings",
}
_TRANSIENT = (openai.APITimeoutError, openai.APIConnectionError, openai.RateLimitError,
              openai.InternalServerError, openai.ConflictError)


class OpenAIBackend:
    """Chat completions through the OpenAI API or a compatible server.

    Args:
        model: model name sent with each request.
        api_key: the key (None for servers that need none).
        base_url: server root ending in `/v1` (None: api.openai.com).
        structured_output: "json_schema", "json_object" or "none" (what the server supports).
        max_concurrency: requests in flight at once.
        max_retries: retries per request for transient errors.
        timeout_s: seconds before one attempt times out.
        temperature, max_tokens: defaults for requests that leave them unset.
        source: name recorded as the records' `source`.
    """

    def __init__(self, model: str, api_key: str | None = None, base_url: str | None = None,
                 structured_output: str = "none", max_concurrency: int = 8, max_retries: int = 6,
                 timeout_s: float = 120.0, temperature: float = 0.7, max_tokens: int = 1500,
                 source: str = "openai") -> None:
        if structured_output not in ("json_schema", "json_object", "none"):
            raise BackendError(f"structured_output must be json_schema, json_object or none, got "
                               f"{structured_output!r}")
        if max_concurrency < 1:
            raise BackendError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.model, self.source = model, source
        self.structured_output = structured_output
        self.supports_json = structured_output != "none"
        self.max_concurrency, self.max_retries, self.timeout_s = max_concurrency, max_retries, timeout_s
        self.temperature, self.max_tokens = temperature, max_tokens
        self.base_url = base_url
        # Kept private and never put into repr, logs or errors.
        self._api_key = api_key
        #: HTTP status codes of every attempt that came back (retried ones included), for the summary.
        self.status_counts: Counter[int] = Counter()

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, base_url={self.base_url!r})"

    def complete(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        """Answer the requests concurrently (at most `max_concurrency` in flight).

        Raises:
            BackendFatalError: a 400/401/403/404/422 answer; the run should stop.
        """
        if not requests:
            return []
        return _run_coroutine(self._complete_all(requests))

    def close(self) -> None:
        """Nothing to release: each `complete` call opens and closes its own client."""

    async def _complete_all(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        async def count_status(response: Any) -> None:
            self.status_counts[response.status_code] += 1

        http_client = openai.DefaultAsyncHttpxClient(event_hooks={"response": [count_status]})
        client = build_openai_client(self._api_key, self.base_url, self.timeout_s, self.max_retries,
                                     asynchronous=True, http_client=http_client)
        semaphore = asyncio.Semaphore(self.max_concurrency)

        async def one(request: ChatRequest) -> ChatResponse:
            async with semaphore:
                return await self._complete_one(client, request)

        try:
            return list(await asyncio.gather(*(one(r) for r in requests)))
        finally:
            await client.close()

    def _request_kwargs(self, request: ChatRequest) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": request.messages,
            "temperature": self.temperature if request.temperature is None else request.temperature,
            "max_tokens": request.max_tokens or self.max_tokens,
        }
        if request.response_format and self.supports_json:
            kwargs["response_format"] = (request.response_format if self.structured_output == "json_schema"
                                         else {"type": "json_object"})
        return kwargs

    async def _complete_one(self, client: openai.AsyncOpenAI, request: ChatRequest) -> ChatResponse:
        try:
            completion = await client.chat.completions.create(**self._request_kwargs(request))
        except openai.APIStatusError as err:
            if isinstance(err, _TRANSIENT):
                return _failed(f"HTTP {err.status_code} after {self.max_retries} retries")
            raise self._fatal(err.status_code, err) from None
        except _TRANSIENT as err:
            return _failed(f"{type(err).__name__} after {self.max_retries} retries")
        except openai.APIResponseValidationError:
            return _failed("the server's answer was not a chat completion")
        return _to_response(completion)

    def _fatal(self, status: int, err: openai.APIStatusError) -> BackendFatalError:
        hint = _FATAL_HINTS.get(status, "the server refused the request")
        detail = ""
        if status not in (401, 403):  # auth error bodies may quote part of the key
            detail = f" Server said: {redact(_error_message(err))[:300]}"
        where = self.base_url or "api.openai.com"
        return BackendFatalError(f"{self.model} at {where}: HTTP {status}: {hint}.{detail}")


def _error_message(err: openai.APIStatusError) -> str:
    body = err.body
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            return str(inner.get("message") or inner)
        return str(inner)
    return str(body or "")


def _failed(reason: str) -> ChatResponse:
    return ChatResponse(text="", finish_reason="error", error=reason)


def _to_response(completion: Any) -> ChatResponse:
    """Our response from an OpenAI `ChatCompletion`, tolerating servers that omit fields."""
    try:
        raw = completion.model_dump(mode="json", exclude_none=True)
    except Exception:  # noqa: BLE001 - a non-pydantic payload (odd server); keep its text form
        raw = {"unparsed": redact(completion)[:10000]}
    choices = getattr(completion, "choices", None) or []
    if not choices:
        return ChatResponse(text="", finish_reason="error", raw=raw, error="the response has no choices")
    choice = choices[0]
    message = getattr(choice, "message", None)
    text = (getattr(message, "content", None) or "") if message is not None else ""
    usage = getattr(completion, "usage", None)
    tokens = TokenUsage(int(getattr(usage, "prompt_tokens", 0) or 0),
                        int(getattr(usage, "completion_tokens", 0) or 0))
    return ChatResponse(text=text, finish_reason=str(getattr(choice, "finish_reason", None) or "stop"),
                        usage=tokens, raw=raw)


def _run_coroutine(coroutine: Any) -> Any:
    """Run a coroutine to completion, also from code that already runs an event loop (notebooks)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coroutine)
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
            result["error"] = err

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def build_openai_backend(cfg: Mapping[str, Any], paths_cfg: Mapping[str, Any] | None) -> OpenAIBackend:
    """An `OpenAIBackend` from a `configs/model/language_model/*.yaml` config.

    Raises:
        MissingAPIKeyError: the config needs a key and none is configured.
    """
    key = openai_api_key(paths_cfg, str(cfg["api_key_env"]), required=bool(cfg["requires_api_key"]),
                         model=str(cfg["name"]))
    return OpenAIBackend(
        model=str(cfg["model"]), api_key=key, base_url=cfg["base_url"],
        structured_output=str(cfg["structured_output"]), max_concurrency=int(cfg["max_concurrency"]),
        max_retries=int(cfg["max_retries"]), timeout_s=float(cfg["timeout_s"]),
        temperature=float(cfg["temperature"]), max_tokens=int(cfg["max_tokens"]),
        # `source` is optional: OpenAI-compatible servers name themselves; the OpenAI base leaves it out.
        source=str(cfg.get("source", "openai")))
