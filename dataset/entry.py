"""The one way an entry script in run/ starts: `@entry("config_name")` over its `main(cfg)`.

The decorator does what every script needs around Hydra:

- before Hydra composes, it registers secrets given on the command line or in the environment and
  scrubs them from logging, stdout and stderr (`dataset.secrets.guard_process_secrets`); Hydra would
  otherwise echo a mistyped `path.openai_api_key=...` override verbatim;
- it composes `configs/<config_name>.yaml` with `hydra.main`;
- it runs `main(cfg)` inside `exit_on_error`, which turns a failure into one clear line on stderr
  and a non-zero exit code. Hydra would otherwise print a traceback headed "Error executing job with
  overrides: [...]", which repeats the command line, API keys included.

Expected errors print their message only: the project's own (`dataset.errors.SpecialistVLMError`,
the base of every error class the library raises for bad input, configs, keys or server answers),
a missing file or unwritable folder (`OSError`), a bad config (`OmegaConfBaseException`), and a
`ValueError` / `RuntimeError` / `NotImplementedError` raised by the project's library code itself
(which raises them only with a message naming the fix). Anything else, e.g. an error deep inside
torch, prints a traceback with secrets scrubbed. `HYDRA_FULL_ERROR=1` prints the traceback of
expected errors too. A config key the chosen configs lack and text where a number belongs are
reported by the setting at fault (`expected_message`). Hydra's own composition errors (a config
name or key it cannot find) come before `main` runs, in Hydra's words, with exit status 1.

The run folder itself (`dataset.runtime.prepare_run`) is set up by the library function a script
calls, so that Python callers get the same folder as the command line.
"""

from __future__ import annotations

import ast
import functools
import logging
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    MissingMandatoryValue,
    OmegaConfBaseException,
)

from dataset.errors import SpecialistVLMError
from dataset.secrets import guard_process_secrets, redact

# OSError covers a missing registry model (a FileNotFoundError whose message names the command that
# makes it) and an unwritable output folder or full disk (the message names the path).
EXPECTED = (SpecialistVLMError, OSError, OmegaConfBaseException)
EXIT_EXPECTED, EXIT_UNEXPECTED = 2, 1
# Raised with a user-facing message when our own code raises them (not from inside a library).
RAISED_BY_US = (ValueError, RuntimeError, NotImplementedError)
LIBRARY_PACKAGES = ("models", "dataset", "curriculum", "evaluation", "saliency")
_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = _ROOT / "configs"
HYDRA_VERSION_BASE = "1.3"
# bitsandbytes (imported through peft) warns at import, on CPUs with AVX512-BF16, that an optional
# kernel package for 4-bit CPU matmuls is missing; nothing here uses those, and the line would head
# every run's output. Set here, at import, because entry scripts import this module first.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
# Python's words for text where a number belongs ("invalid literal for int() with base 10: 'abc'").
_NOT_A_NUMBER = re.compile(r"(?:invalid literal for int\(\) with base 10|could not convert string to float): "
                           r"(?P<value>'[^']*'|\"[^\"]*\")$")


def is_expected(err: BaseException) -> bool:
    """Whether `err` is an expected error (one line suffices) rather than a bug (traceback).

    Args:
        err: the exception caught by an entry script.

    Returns:
        True for the project's error classes, `OSError` and OmegaConf errors, and for a
        ValueError / RuntimeError / NotImplementedError whose innermost frame is in the project's
        library packages.
    """
    if isinstance(err, EXPECTED):
        return True
    if not isinstance(err, RAISED_BY_US) or err.__traceback__ is None:
        return False
    frames = traceback.extract_tb(err.__traceback__)
    innermost = os.path.abspath(frames[-1].filename)
    return any(innermost.startswith(os.path.join(_ROOT, package) + os.sep) for package in LIBRARY_PACKAGES)


@contextmanager
def exit_on_error() -> Iterator[None]:
    """Run the body; on an error, write a redacted message to stderr and exit non-zero.

    Raises:
        SystemExit: 2 for expected errors (message only), 1 for anything else (scrubbed traceback).
    """
    try:
        yield
    except MissingMandatoryValue as err:
        key = getattr(err, "full_key", "") or "a value"
        sys.stderr.write(f"error: {key} must be set, e.g. on the command line: {key}=<value>\n")
        raise SystemExit(EXIT_EXPECTED) from None
    except Exception as err:  # noqa: BLE001 - last line of defence against leaking a key in a traceback
        expected = is_expected(err)
        if not expected or os.environ.get("HYDRA_FULL_ERROR") == "1":
            sys.stderr.write(redact(traceback.format_exc()))
        if expected:
            sys.stderr.write(f"error: {redact(expected_message(err, sys.argv[1:]))}\n")
        raise SystemExit(EXIT_EXPECTED if expected else EXIT_UNEXPECTED) from None


def expected_message(err: BaseException, overrides: list[str]) -> str:
    """The one line an expected error prints; two kinds name the setting at fault themselves:

    - a config key the script reads but the chosen configs lack (e.g. a closed-ended task given to
      the training script): the key and the config group given on the command line;
    - a setting that must be a number (`generation.max_images=abc`): the override that gave it.

    Args:
        err: the expected error.
        overrides: the command line's arguments (Hydra overrides).
    """
    message = str(err).strip() or type(err).__name__
    if isinstance(err, (ConfigAttributeError, ConfigKeyError)) and getattr(err, "full_key", None):
        key = str(err.full_key)
        parts = key.split(".")
        groups: list[str] = []  # the deepest config group given on the command line, e.g. dataset/task=...
        for depth in range(len(parts) - 1, 0, -1):
            groups = [o for o in overrides if o.startswith("/".join(parts[:depth]) + "=")]
            if groups:
                break
        chosen = f" ({', '.join(groups)} does not set it)" if groups else ""
        return (f"{key} is missing from the composed config{chosen}; check that the configs chosen on the "
                f"command line suit this script, or the key's spelling")
    number = _NOT_A_NUMBER.search(message)
    if number:
        value = ast.literal_eval(number["value"])
        keys = [o.split("=", 1)[0].lstrip("+~") for o in overrides if o.partition("=")[2] == value]
        if keys:
            return f"{', '.join(keys)} must be a number, got {value!r}"
        return f"a setting that must be a number is not ({message})"
    return message


def entry(config_name: str) -> Callable[[Callable[[DictConfig], Any]], Callable[[], Any]]:
    """Decorator for an entry script's `main(cfg)`: guarded secrets, Hydra, one-line errors.

    Secrets are guarded when the decorator is applied, i.e. when the script is imported and before
    Hydra parses the command line. Hydra names the job (and so the run folder,
    `runs/<script name>/...`) after the decorated function's file, as with a bare `hydra.main`.

    Args:
        config_name: the primary config, `configs/<config_name>.yaml`.

    Returns:
        A decorator turning `main(cfg)` into the script's command-line entry `main()`.
    """
    guard_process_secrets()

    def decorate(task: Callable[[DictConfig], Any]) -> Callable[[], Any]:
        @functools.wraps(task)  # Hydra follows __wrapped__ to the script's file for the job name
        def run_guarded(cfg: DictConfig) -> Any:
            with exit_on_error():
                return task(cfg)

        return hydra.main(version_base=HYDRA_VERSION_BASE, config_path=str(CONFIG_DIR),
                          config_name=config_name)(run_guarded)

    return decorate
