"""Turn failures of an entry script into one clear line on stderr and a non-zero exit code.

Hydra would otherwise print a traceback headed "Error executing job with overrides: [...]",
which repeats the command line, API keys given as `paths.openai_api_key=...` included. Expected
errors (missing key, bad config, bad annotation table, fatal server answer) print their message
only; anything else prints a traceback with secrets scrubbed.
"""

from __future__ import annotations

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
from dataset.images import ImageReadError

# FileNotFoundError covers a missing registry model (its message names the command that makes it).
EXPECTED = (MissingAPIKeyError, BackendError, CurriculumConfigError, AnnotationError, GenerationError,
            ImageReadError, FileNotFoundError, OmegaConfBaseException)
EXIT_EXPECTED, EXIT_UNEXPECTED = 2, 1


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
    except EXPECTED as err:
        sys.stderr.write(f"error: {redact(err)}\n")
        raise SystemExit(EXIT_EXPECTED) from None
    except Exception:  # noqa: BLE001 - last line of defence against leaking a key in a traceback
        sys.stderr.write(redact(traceback.format_exc()))
        raise SystemExit(EXIT_UNEXPECTED) from None
