"""Judges that read a generated report and extract its stage, referral and findings.

- `RuleJudge` (offline default): the negation-aware answer parser applied to the report for every
  task; a biomarker the report does not mention counts as absent (the clinical default).
- `LLMJudge`: an LLM through the curriculum backends (`curriculum.backends.build_backend`) asked
  for JSON; a value it cannot give validly is recorded as invalid. A failed request or a reply
  with no JSON at all is the judge's failure (`last_failures`), not the evaluated model's.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from dataset.clinical import load_knowledge
from dataset.naming import safe_file_name
from evaluation.answer_cache import CACHE_FOLDER, AnswerCache, answer_key
from evaluation.parser import parse_answer
from evaluation.tasks import ABSENT, BINARY_CLASSES, Task

logger = logging.getLogger(__name__)
PLACEHOLDERS = ("{report}", "{stages}", "{referrals}", "{biomarkers}")
JSON_KEYS = {"staging": "stage", "referral": "referral"}  # task kind -> key in the judge's JSON


class ReportJudge(Protocol):
    """Extracts one class per task from each report."""

    name: str

    def extract(self, reports: Sequence[str], tasks: Sequence[Task]) -> list[dict[str, str | None]]:
        """For each report, task name -> class id (None: the report gives no valid answer)."""
        ...


class RuleJudge:
    """The offline judge: `evaluation.parser` on the whole report, per task."""

    name = "rules"

    def extract(self, reports: Sequence[str], tasks: Sequence[Task]) -> list[dict[str, str | None]]:
        out = []
        for report in reports:
            found: dict[str, str | None] = {}
            for task in tasks:
                value = parse_answer(report, task)
                if value is None and task.kind == "biomarker" and report and report.strip():
                    value = ABSENT  # not mentioned in a report = not seen
                found[task.name] = value
            out.append(found)
        return out


def _json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in a reply (models sometimes wrap it in prose or code fences)."""
    match = re.search(r"\{.*\}", text or "", flags=re.DOTALL)
    if not match:
        return None
    try:
        value = json.loads(match.group(0))
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


class LLMJudge:
    """An LLM asked to return {"stage", "referral", "biomarkers": {id: present|absent}} as JSON.

    Args:
        backend: an `LLMBackend` (from `curriculum.backends.build_backend`).
        prompt: template with {report}, {stages}, {referrals} and {biomarkers}.
        cache: keeps every usable reply (`evaluation.answer_cache`), so a rerun asks the judge only
            about reports it has not judged (or failed on).

    Raises:
        ValueError: the prompt lacks a placeholder, or the backend is the rules backend (which
            only answers curriculum requests).
    """

    def __init__(self, backend, prompt: str, max_tokens: int = 400, cache: AnswerCache | None = None):
        missing = [p for p in PLACEHOLDERS if p not in prompt]
        if missing:
            raise ValueError(f"judge prompt lacks placeholders {missing}; "
                             "see configs/dataset/task/open_ended_reports.yaml")
        if getattr(backend, "source", "") == "rules":
            raise ValueError("the rules language model cannot judge free text; use evaluation.judge=rules "
                             "or an LLM, e.g. model/language_model=gpt-4o or openai_compatible")
        self.backend = backend
        self.prompt = prompt
        self.max_tokens = max_tokens
        self.name = f"llm:{getattr(backend, 'model', '?')}"
        self.last_failures: list[str | None] = []
        self.cache = cache

    def _request(self, report: str, tasks: Sequence[Task]):
        from curriculum.backends import ChatRequest

        knowledge = load_knowledge()
        biomarkers = [t.biomarker for t in tasks if t.biomarker]
        text = (self.prompt.replace("{report}", report)
                .replace("{stages}", ", ".join(s.id for s in knowledge.stages))
                .replace("{referrals}", ", ".join(r.id for r in knowledge.referral))
                .replace("{biomarkers}", ", ".join(biomarkers)))
        response_format = {"type": "json_object"} if getattr(self.backend, "supports_json", False) else None
        return ChatRequest(messages=[{"role": "user", "content": text}], response_format=response_format,
                           max_tokens=self.max_tokens, temperature=0.0)

    def extract(self, reports: Sequence[str], tasks: Sequence[Task]) -> list[dict[str, str | None]]:
        """Like `ReportJudge.extract`; `last_failures` then holds, per report, why the judge itself
        failed (request failed, or a reply with no JSON object) or None. Such reports are the
        judge's failures, not the evaluated model's invalid answers."""
        requests = [self._request(r, tasks) for r in reports]
        keys = [answer_key("judge", str(getattr(self.backend, "model", "")), b"", r.messages[0]["content"],
                           {"max_tokens": self.max_tokens}) for r in requests]
        texts: list[str | None] = [self.cache.get(k) if self.cache else None for k in keys]
        missing = [i for i, text in enumerate(texts) if text is None]
        self.last_failures = [None] * len(reports)
        responses = self.backend.complete([requests[i] for i in missing]) if missing else []
        for i, response in zip(missing, responses):
            if not response.ok:
                self.last_failures[i] = f"judge request failed: {response.error}"
            elif _json_object(response.text) is None:
                self.last_failures[i] = "the judge's reply held no JSON object"
            else:
                texts[i] = response.text
                if self.cache is not None:  # only usable replies: a failed one is asked again
                    self.cache.put(keys[i], response.text, model=str(getattr(self.backend, "model", "")))
        return [self._read(text or "", tasks) for text in texts]

    @staticmethod
    def _read(text: str, tasks: Sequence[Task]) -> dict[str, str | None]:
        data = _json_object(text) or {}
        found: dict[str, str | None] = {}
        biomarkers = data.get("biomarkers") if isinstance(data.get("biomarkers"), Mapping) else {}
        for task in tasks:
            key = JSON_KEYS.get(task.kind, task.kind)
            value = biomarkers.get(task.biomarker) if task.biomarker else data.get(key)
            value = str(value).strip().lower() if value is not None else None
            if task.kind == "biomarker" and value in ("true", "yes"):
                value = "present"
            if task.kind == "biomarker" and value in ("false", "no"):
                value = "absent"
            classes = BINARY_CLASSES if task.kind == "biomarker" else task.classes
            found[task.name] = value if value in classes else None
        return found


def build_judge(kind: str, language_model_cfg: Mapping[str, Any] | None, paths_cfg: Mapping[str, Any] | None,
                prompt: str) -> ReportJudge:
    """`rules` (offline) or `llm` (the configured `model/language_model`).

    Raises:
        ValueError: unknown kind.
    """
    if kind == "rules":
        return RuleJudge()
    if kind == "llm":
        from curriculum.backends import build_backend

        backend = build_backend(language_model_cfg, paths_cfg)
        output_dir = paths_cfg.get("output_dir") if paths_cfg is not None else None
        cache = AnswerCache(Path(str(output_dir)) / CACHE_FOLDER /
                            f"judge_{safe_file_name(getattr(backend, 'model', 'llm'))}.jsonl") if output_dir else None
        return LLMJudge(backend, prompt, cache=cache)
    raise ValueError(f"unknown judge {kind!r}; use evaluation.judge=rules or evaluation.judge=llm")
