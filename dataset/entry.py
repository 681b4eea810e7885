"""Turn failures of an entry script into one clear line on stderr and a non-zero exit code.

Hydra would otherwise print a traceback headed "Error executing job with overrides: [...]",
which repeats the command line, API keys given as `paths.openai_api_key=...` included. Expected
errors print their message only: the project's own (`dataset.errors.SpecialistVLMError` and the
older classes below: missing key, bad config, bad annotation table, fatal server answer), and a
`ValueError` / `RuntimeError` / `NotImplementedError` raised by the project's library code itself
(which raises them only with a message naming the fix). Anything else, e.g. an error deep inside
torch, prints a traceback with secrets scrubbed. `HYDRA_FULL_ERROR=1` prints the traceback of
expected errors too.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from curriculum.backends.base import BackendError
from curriculum.generator import GenerationError
from curriculum.modules import CurriculumConfigError
from curriculum.secrets import MissingAPIKeyError, redact
from dataset.annotations import AnnotationError
from dataset.errors import SpecialistVLMError
from dataset.images import ImageReadError

# OSError covers a missing registry model (a FileNotFoundError whose message names the command that
# makes it) and an unwritable output folder or full disk (the message names the path).
EXPECTED = (SpecialistVLMError, MissingAPIKeyError, BackendError, CurriculumConfigError, AnnotationError,
            GenerationError, ImageReadError, OSError, OmegaConfBaseException)
EXIT_EXPECTED, EXIT_UNEXPECTED = 2, 1
# Raised with a user-facing message when our own code raises them (not from inside a library).
RAISED_BY_US = (ValueError, RuntimeError, NotImplementedError)
LIBRARY_PACKAGES = ("models", "dataset", "curriculum", "evaluation", "saliency")
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def is_expected(err: BaseException) -> bool:
    """Whether `err` is an expected error (one line suffices) rather than a bug (traceback).

    Args:
        err: the exception caught by an entry script.

    Returns:
        True for the project's error classes, and for a ValueError / RuntimeError /
        NotImplementedError whose innermost frame is in the project's library packages.
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
            message = str(err).strip() or type(err).__name__
            sys.stderr.write(f"error: {redact(message)}\n")
        raise SystemExit(EXIT_EXPECTED if expected else EXIT_UNEXPECTED) from None
