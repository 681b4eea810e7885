"""Secrets: where API keys come from, and keeping them out of every file, log and error message.

A key is looked up in this order: the environment variable named by the language-model config
(`OPENAI_API_KEY` by default), `paths.openai_api_key` (the seed README's way, e.g. on the command
line), then the file named by `paths.openai_api_key_file`. Once resolved, every key is registered
with `register_secret`, so `redact` and the logging filter installed by `install_log_redaction`
scrub it from any text that leaves the process. Config containers written to disk (a run's
`resolved_config.yaml`) go through `redact_config`, which blanks every secret-named key.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dataset.errors import SpecialistVLMError

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
# One placeholder for text and config redaction.
REDACTED = "***redacted***"
# Key names whose values are secrets: api_key / apikey (but not api_key_file or api_key_env, which
# name where a key is kept), *_token / token (not max_tokens, tokenizer), secret, password.
SECRET_KEY_PATTERN = re.compile(r"api_?key(?!_file|_env)|secret|password|(^|_)token$")
# Shapes of common API keys and bearer headers, scrubbed even when not registered.
_KEY_SHAPES = re.compile(r"(sk-[A-Za-z0-9_\-]{8,})|(Bearer\s+[A-Za-z0-9_\-\.]{8,})")
_REGISTERED: set[str] = set()


class MissingAPIKeyError(SpecialistVLMError, RuntimeError):
    """No API key was found for a backend that needs one."""


def is_secret_key(key: str) -> bool:
    """Whether a config key names a secret (its value must never be written out)."""
    return SECRET_KEY_PATTERN.search(key.lower()) is not None


def register_secret(value: str | None) -> None:
    """Remember a secret value so `redact` removes it from any text (ignores short/empty values)."""
    if value and len(value) >= 4:
        _REGISTERED.add(value)


def redact(text: Any) -> str:
    """`text` as a string with every registered secret and key-shaped token replaced.

    Args:
        text: anything; non-strings are converted with `str` first.

    Returns:
        The scrubbed string.
    """
    text = str(text)
    for secret in sorted(_REGISTERED, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return _KEY_SHAPES.sub(REDACTED, text)


def redact_config(value: Any) -> Any:
    """A copy of a plain config container with every secret-named key's value replaced.

    Args:
        value: a container from `OmegaConf.to_container` (dicts, lists, scalars).

    Returns:
        The same structure with the value of every non-empty secret key set to `REDACTED`.
    """
    if isinstance(value, dict):
        return {k: (REDACTED if is_secret_key(str(k)) and v not in (None, "") else redact_config(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact_config(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """Logging filter that scrubs secrets from a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record must not break logging
            return True
        scrubbed = redact(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install_log_redaction() -> None:
    """Scrub secrets from every log record: at creation (a record factory, which survives Hydra
    re-configuring logging) and in every root handler (idempotent)."""
    previous = logging.getLogRecordFactory()
    if not getattr(previous, "redacting", False):
        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            RedactingFilter().filter(record)
            return record

        factory.redacting = True  # type: ignore[attr-defined]
        logging.setLogRecordFactory(factory)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


class RedactingStream:
    """A text stream wrapper that scrubs secrets from everything written through it.

    Hydra prints its own errors straight to stderr, echoing a mistyped override such as
    `path.openai_api_key=sk-...` verbatim; no logging filter sees that text.
    """

    redacting = True

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def install_stream_redaction() -> None:
    """Wrap `sys.stdout` and `sys.stderr` in `RedactingStream` (idempotent)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not getattr(stream, "redacting", False):
            setattr(sys, name, RedactingStream(stream))


def guard_process_secrets(argv: list[str] | None = None, env_vars: tuple[str, ...] = (DEFAULT_KEY_ENV,)) -> None:
    """Register secrets given on the command line (`paths.openai_api_key=...`, also under a
    mistyped group such as `path.openai_api_key=...`) or in the environment and scrub them from
    all logging and from the process's stdout and stderr, before Hydra composes (and, when
    verbose, logs) the config or prints an error.

    `dataset.entry.entry` calls this when it decorates an entry script, i.e. at import time.
    """
    for arg in sys.argv[1:] if argv is None else argv:
        key, sep, value = arg.lstrip("+~").partition("=")
        if sep and is_secret_key(key.rsplit(".", 1)[-1]):
            register_secret(value.strip().strip("'\""))
    for name in env_vars:
        register_secret(os.environ.get(name, "").strip())
    install_log_redaction()
    if argv is None:  # the real process (tests pass argv and keep pytest's streams)
        install_stream_redaction()


def _get(cfg: Mapping[str, Any] | None, key: str) -> Any:
    if cfg is None:
        return None
    try:
        return cfg.get(key)
    except Exception:  # noqa: BLE001 - an unresolvable interpolation counts as "not given"
        return None


def resolve_api_key(paths_cfg: Mapping[str, Any] | None, env_var: str = DEFAULT_KEY_ENV) -> str | None:
    """The API key from the environment, `paths.openai_api_key` or `paths.openai_api_key_file`.

    Args:
        paths_cfg: the `paths` config (may be None).
        env_var: environment variable to read first.

    Returns:
        The key (registered for redaction), or None when none is configured.

    Raises:
        MissingAPIKeyError: `openai_api_key_file` names a file that does not exist or is empty.
    """
    key = os.environ.get(env_var, "").strip() or str(_get(paths_cfg, "openai_api_key") or "").strip()
    if not key:
        key_file = _get(paths_cfg, "openai_api_key_file")
        if key_file:
            path = Path(str(key_file)).expanduser()
            if not path.is_file():
                raise MissingAPIKeyError(f"paths.openai_api_key_file points to {path}, which does not exist; "
                                         f"fix the path or set {env_var}")
            key = path.read_text().strip()
            if not key:
                raise MissingAPIKeyError(f"paths.openai_api_key_file {path} is empty; put the key in it "
                                         f"or set {env_var}")
    if key in ("", "null", "None", "???"):
        return None
    register_secret(key)
    return key


def require_api_key(paths_cfg: Mapping[str, Any] | None, env_var: str = DEFAULT_KEY_ENV,
                    model: str = "this model") -> str:
    """Like `resolve_api_key`, but a missing key is an error whose message says how to give one.

    Raises:
        MissingAPIKeyError: no key configured.
    """
    key = resolve_api_key(paths_cfg, env_var)
    if key is None:
        raise MissingAPIKeyError(
            f"{model} needs an API key: set the {env_var} environment variable (or "
            f"paths.openai_api_key_file=<file holding the key>), or run offline with "
            f"model/language_model=rules")
    return key
