"""The resumable, append-only store of one curriculum module.

`<curriculum_dir>/<module>/records.jsonl` holds the kept QA records (`dataset.qa_records`);
`raw_responses.jsonl` beside it holds every raw answer with its request key, for audit. A
request counts as done once a raw response line that kept records is on disk (or after
`max_attempts` responses that kept none). Each batch is written records
first, then raw responses, each fsynced: a process killed at any moment either left a request
undone (asked again on rerun; its records, if they landed, are deduplicated by `record_id`) or
done with all its records on disk. Torn last lines are ignored on read and terminated on append.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dataset.qa_records import RECORDS_FILE, QARecord, append_records, iter_records

logger = logging.getLogger(__name__)

RAW_FILE = "raw_responses.jsonl"
#: module settings (hash -> settings) of the requests in `raw_responses.jsonl` (`settings_hash`)
SETTINGS_FILE = "module_settings.json"
_LOCATION_COLUMNS = {"image_file", "image_path", "mask_path"}


def request_key(image_id: str, module: str, source: str = "", model: str = "") -> str:
    """The key that marks one image's request in one module, by one backend and model, as done.

    Backend and model are part of it so that a second LLM writing into the same module folder
    (e.g. gpt-4o after the offline rules) generates its own records instead of skipping them all.
    """
    return "\x1f".join([image_id, module, source, model])


DEFAULT_MAX_ATTEMPTS = 3


class CurriculumStore:
    """Records and raw responses of one module, with the set of requests already answered.

    A request is done once a response of it kept at least one record, or after `max_attempts`
    responses that kept none (unparseable, or every pair rejected): those are asked again on a
    rerun, up to that limit, instead of being marked done after one bad answer.

    Args:
        folder: `<curriculum_dir>/<module name>`; created when missing.
        max_attempts: responses without a kept record after which a request counts as done.
    """

    def __init__(self, folder: str | Path, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> None:
        self.folder = Path(folder)
        self.max_attempts = max(1, int(max_attempts))
        self.folder.mkdir(parents=True, exist_ok=True)
        self.records_path = self.folder / RECORDS_FILE
        self.raw_path = self.folder / RAW_FILE
        for path in (self.records_path, self.raw_path):
            _drop_torn_tail(path)
        self.record_ids: set[str] = set()
        if self.records_path.exists():
            self.record_ids = {r.record_id for r in iter_records(self.records_path)}
        #: request key -> fingerprint of the annotation row it was generated from ("" if unknown)
        self.done: dict[str, str] = {}
        #: request key -> responses that kept no record (for requests not yet done)
        self.empty_attempts: Counter[str] = Counter()
        #: request key -> hash of the module settings it was generated with ("" if not recorded)
        self.settings_of: dict[str, str] = {}
        #: (source, model) -> raw responses on disk, to say whose records a store holds
        self.responses_by_backend: Counter[tuple[str, str]] = Counter()
        self.settings_path = self.folder / SETTINGS_FILE
        self.known_settings: dict[str, Any] = (json.loads(self.settings_path.read_text())
                                               if self.settings_path.exists() else {})
        for line in _iter_jsonl(self.raw_path):
            if "request_key" in line:
                self._note(line)

    def commit(self, records: Iterable[QARecord], raw_lines: Iterable[dict[str, Any]]) -> int:
        """Append a batch: new records (fsync), then raw responses (fsync) that mark requests done.

        Args:
            records: kept records of the batch; ids already stored are skipped.
            raw_lines: one JSON object per answered request, each with a `request_key`.

        Returns:
            The number of records written.
        """
        fresh = []
        for record in records:
            if record.record_id not in self.record_ids:
                self.record_ids.add(record.record_id)
                fresh.append(record)
        written = append_records(self.records_path, fresh)
        raw_lines = list(raw_lines)
        _append_jsonl(self.raw_path, raw_lines)
        for line in raw_lines:
            self._note(line)
        return written

    def _note(self, line: dict[str, Any]) -> None:
        """Count one raw response line: done when it kept records (or the attempts ran out)."""
        key = line["request_key"]
        self.responses_by_backend[(str(line.get("source", "")), str(line.get("model", "")))] += 1
        if key in self.done:
            return
        if line.get("kept", 1) == 0:  # lines from before `kept` was written count as done
            self.empty_attempts[key] += 1
            if self.empty_attempts[key] < self.max_attempts:
                return
        self.done[key] = line.get("input_hash", "")
        self.settings_of[key] = str(line.get("settings_hash", ""))

    def remember_settings(self, settings_hash: str, settings: dict[str, Any]) -> None:
        """Keep the settings behind `settings_hash` beside the store (atomically), so a later run
        with other settings can say what changed."""
        if self.known_settings.get(settings_hash) == settings:
            return
        self.known_settings[settings_hash] = settings
        partial = self.settings_path.with_suffix(".json.partial")
        partial.write_text(json.dumps(self.known_settings, indent=1, sort_keys=True))
        os.replace(partial, self.settings_path)

    def records(self) -> list[QARecord]:
        """Every unique record on disk."""
        return list(iter_records(self.records_path)) if self.records_path.exists() else []


def _iter_jsonl(path: Path) -> Iterable[dict[str, Any]]:
    if not path.exists():
        return
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n"):
                logger.warning("%s: ignoring a torn last line (%d bytes)", path, len(raw))
                return
            try:
                yield json.loads(raw)
            except json.JSONDecodeError:
                logger.warning("%s, line %d: not JSON; ignored", path, number)


def row_fingerprint(row: dict[str, Any]) -> str:
    """A hash of an annotation row's content (file locations excluded, so moving data is fine)."""
    content = {k: v for k, v in sorted(row.items()) if k not in _LOCATION_COLUMNS}
    return hashlib.sha1(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _drop_torn_tail(path: Path) -> None:
    """Cut a torn last line (a writer killed mid-line) so appends start on a fresh line.

    Cutting, not terminating, keeps the file valid JSONL; the torn line's request has no raw
    response yet, so it is asked again and nothing is lost.
    """
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        logger.warning("%s: dropping a torn last line (%d bytes) left by an interrupted run",
                       path, len(data) - keep)
        with path.open("r+b") as handle:
            handle.truncate(keep)
            os.fsync(handle.fileno())


def _append_jsonl(path: Path, lines: list[dict[str, Any]]) -> None:
    if not lines:
        return
    payload = "".join(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n" for line in lines)
    with path.open("ab") as handle:
        handle.write(payload.encode())
        handle.flush()
        os.fsync(handle.fileno())
