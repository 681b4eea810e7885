"""The LLM backend interface shared by the curriculum generator and the open-ended judge.

A backend takes a batch of chat requests and returns one response per request, in order. It owns
its own concurrency, retries and batching; callers only see messages in, text and usage out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from dataset.errors import SpecialistVLMError


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion request.

    Attributes:
        messages: OpenAI-style chat messages, e.g. `[{"role": "user", "content": "..."}]`.
        response_format: an OpenAI `response_format` (`{"type": "json_schema", ...}` or
            `{"type": "json_object"}`); backends that cannot honour it ignore it and say so
            through `LLMBackend.supports_json`.
        max_tokens: cap on generated tokens (None: the backend's configured default).
        temperature: sampling temperature (None: the backend's configured default).
        metadata: caller data that travels with the request, e.g. the structured findings the
            offline rules backend writes from; never sent to a remote server.
    """

    messages: list[dict[str, str]]
    response_format: dict[str, Any] | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TokenUsage:
    """Token counts of one or more completions."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(self.prompt_tokens + other.prompt_tokens,
                          self.completion_tokens + other.completion_tokens)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ChatResponse:
    """The answer to one `ChatRequest`.

    Attributes:
        text: the generated text ("" when the request failed).
        finish_reason: "stop", "length" (cut at the token cap), "content_filter", "error", ...
        usage: tokens spent on this request.
        raw: the backend's raw payload, kept for audit (JSON-serialisable).
        error: a short description when the request failed after all retries (transient errors
            only; fatal ones raise instead); None on success.
    """

    text: str
    finish_reason: str
    usage: TokenUsage = TokenUsage()
    raw: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@runtime_checkable
class LLMBackend(Protocol):
    """Anything that turns chat requests into responses (OpenAI API, local model, rules)."""

    #: backend kind recorded as a QA record's `source`, e.g. "openai", "local_hf", "rules".
    source: str
    #: model name recorded as a QA record's `model`.
    model: str
    #: whether `ChatRequest.response_format` is honoured (structured JSON output).
    supports_json: bool

    def complete(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        """Answer every request, in order, with bounded concurrency.

        Raises:
            BackendFatalError: authentication, permission or bad-request failures, at once.
        """
        ...

    def close(self) -> None:
        """Release clients, models or pools."""
        ...


class BackendError(SpecialistVLMError, RuntimeError):
    """A backend could not be built or used; the message says what to change."""


class BackendFatalError(BackendError):
    """A request failed in a way retrying cannot fix (401/403 authentication, 400 bad request)."""
