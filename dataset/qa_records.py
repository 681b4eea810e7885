"""The QA record: the contract between curriculum generation and training.

One JSON object per line in `<curriculum_dir>/<curriculum name>/records.jsonl`. The file is
append-only; readers tolerate a torn last line (a writer killed mid-write) and duplicate ids.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

logger = logging.getLogger(__name__)

RECORDS_FILE = "records.jsonl"


@dataclass(frozen=True)
class QARecord:
    """One visual question-answer pair about one image."""

    record_id: str
    image_id: str
    module: str
    question: str
    answer: str
    source: str  # backend kind, e.g. "rules", "openai"
    model: str  # model name within the backend, e.g. "gpt-4o"
    prompt_version: str

    @staticmethod
    def make_id(image_id: str, module: str, index: int, source: str = "", model: str = "") -> str:
        """Stable id for the `index`-th QA about an image in a module from one backend/model."""
        key = "\x1f".join([image_id, module, str(index), source, model])
        return hashlib.sha1(key.encode()).hexdigest()[:20]

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)


_FIELDS = {f.name for f in fields(QARecord)}


def iter_records(path: str | Path) -> Iterator[QARecord]:
    """Yield the records of one `records.jsonl` file (or a folder holding one), first copy of
    each id only.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a complete (newline-terminated) line is not a valid record.
    """
    path = Path(path)
    if path.is_dir():
        path = path / RECORDS_FILE
    seen: set[str] = set()
    with path.open("rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n"):
                logger.warning("%s: ignoring a torn last line (%d bytes)", path, len(raw))
                break
            if not raw.strip():
                continue
            try:
                data = json.loads(raw)
                record = QARecord(**{k: data[k] for k in _FIELDS})
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise ValueError(f"{path}, line {line_number}: not a QA record ({err})") from err
            if record.record_id not in seen:
                seen.add(record.record_id)
                yield record


def read_records(path: str | Path) -> list[QARecord]:
    """All unique records of a store (see `iter_records`)."""
    return list(iter_records(path))


def append_records(path: str | Path, records: Iterable[QARecord]) -> int:
    """Append records and fsync, so a crash loses at most the line being written.

    Returns:
        The number of records written.
    """
    path = Path(path)
    if path.is_dir() or not path.suffix:
        path = path / RECORDS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [r.to_json() + "\n" for r in records]
    if not lines:
        return 0
    with path.open("ab") as handle:
        _repair_torn_tail(handle, path)
        handle.write("".join(lines).encode())
        handle.flush()
        os.fsync(handle.fileno())
    return len(lines)


def _repair_torn_tail(handle, path: Path) -> None:
    """Cut a torn last line (a writer killed mid-line) so the next append starts cleanly.

    The torn line is dropped rather than terminated: a terminated fragment would become a complete
    but invalid line that readers must reject.
    """
    size = handle.seek(0, os.SEEK_END)
    if size == 0:
        return
    with path.open("rb") as reader:
        data = reader.read()
    if data.endswith(b"\n"):
        return
    keep = data.rfind(b"\n") + 1
    logger.warning("%s: dropping a torn last line (%d bytes)", path, size - keep)
    handle.truncate(keep)
    handle.seek(keep)
