"""The project's expected errors: bad input, a bad or incomplete configuration, a missing or
damaged file. Each message names the file, row or setting and the fix.

Entry scripts (`dataset.entry.entry`) print an expected error as one line on stderr
and exit with status 2; anything else is a bug and keeps its (scrubbed) traceback.
"""

from __future__ import annotations


class SpecialistVLMError(Exception):
    """Base of every expected error; its message is complete and says what to change."""


class ConfigError(SpecialistVLMError, ValueError):
    """A setting (or combination of settings) cannot work, e.g. 8-bit without CUDA."""


class InputError(SpecialistVLMError, ValueError):
    """An input file or value is malformed, e.g. an image smaller than the crop."""


class MissingInputError(SpecialistVLMError, FileNotFoundError):
    """A file or folder the run needs is missing or incomplete (e.g. a model without weights)."""
