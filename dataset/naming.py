"""Safe file and folder names from identifiers that come from user data (image ids, model names).

An `image_id` such as `../../etc` or `patient 7/scan:2` must not pick where outputs land. Safe
names are kept as they are; any other gets its unsafe characters replaced and a short hash of
the original appended, so two ids never share a folder.
"""

from __future__ import annotations

import hashlib
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_LENGTH = 100


def safe_file_name(identifier: object, max_length: int = MAX_LENGTH) -> str:
    """A single path component for `identifier` (never empty, never `.`/`..`, no separators).

    Args:
        identifier: any value; converted with `str`.
        max_length: longest result (long ids are cut and hashed).

    Returns:
        `identifier` itself when already safe, else a cleaned name plus `-<8 hex of its sha1>`.
    """
    text = str(identifier)
    cleaned = _UNSAFE.sub("_", text).strip("._") or "_"
    if cleaned == text and len(text) <= max_length and not text.startswith("."):
        return text
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]
    return f"{cleaned[:max_length - 9]}-{digest}"
