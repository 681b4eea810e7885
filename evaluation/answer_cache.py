"""An append-only store of paid API answers, so a failed or interrupted evaluation never pays twice.

One JSON line per answer, keyed by a hash of the endpoint, model, image bytes, prompt and the
generation settings; each line is fsynced as soon as its answer arrives (like the curriculum
stores, `curriculum/store.py`). A rerun asks the API only for keys that are not there yet. Torn
last lines (a process killed mid-write) are ignored on read and cut before the next append.

Default location: `<paths.output_dir>/api_answer_cache/<registry name>.jsonl`; set
`api_cache_dir` in the generation settings to move it, or `api_cache_dir=false` to turn it off.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

CACHE_FOLDER = "api_answer_cache"


def answer_key(endpoint: str, model: str, image: bytes, prompt: str, settings: dict[str, Any]) -> str:
    """The cache key of one request: what the answer depends on, hashed.

    Args:
        image: the image's bytes as sent (PNG for an API), or `image_pixels` for a local model.
    """
    digest = hashlib.sha256()
    for part in (endpoint, model, hashlib.sha256(image).hexdigest(), prompt,
                 json.dumps(settings, sort_keys=True)):
        digest.update(part.encode("utf-8"))
        digest.update(b"\x1f")
    return digest.hexdigest()


class AnswerCache:
    """Answers already paid for, by key; `put` appends one fsynced line (thread-safe).

    Args:
        path: the JSONL file (created with its folder on the first answer).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.answers: dict[str, str] = {}
        if self.path.exists():
            self._cut_torn_tail()
            for number, raw in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
                try:
                    line = json.loads(raw)
                    self.answers[str(line["key"])] = str(line["answer"])
                except (ValueError, KeyError, TypeError):
                    logger.warning("%s, line %d: not a cached answer; ignored", self.path, number)
        if self.answers:
            logger.info("%d cached answers in %s", len(self.answers), self.path)

    def get(self, key: str) -> str | None:
        """The cached answer for `key`, or None."""
        return self.answers.get(key)

    def put(self, key: str, answer: str, **meta: Any) -> None:
        """Store one answer (and descriptive fields such as model and prompt) on disk at once."""
        line = json.dumps({"key": key, "answer": answer, **meta}, ensure_ascii=False, sort_keys=True) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab") as handle:
                handle.write(line.encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())
            self.answers[key] = answer

    def _cut_torn_tail(self) -> None:
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            logger.warning("%s: dropping a torn last line left by an interrupted run", self.path)
            with self.path.open("r+b") as handle:
                handle.truncate(keep)
