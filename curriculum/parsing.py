"""Turn an LLM's answer into question/answer pairs.

Structured JSON (`{"qa": [{"question": ..., "answer": ...}]}`) is tried first, also inside code
fences and, when the JSON is cut off, by salvaging every complete pair. Otherwise a tolerant
reader of numbered "Q:/A:" text handles markdown bold, bullets, indentation, "Question 1:" labels,
code fences and answers that run over several lines.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

QA_JSON_SCHEMA: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {
        "name": "qa_pairs",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"qa": {"type": "array", "items": {
                "type": "object",
                "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
                "required": ["question", "answer"], "additionalProperties": False}}},
            "required": ["qa"], "additionalProperties": False,
        },
    },
}

_FENCE = re.compile(r"^\s*```[\w-]*\s*$")
_MARK = r"(?:\*\*|__|\*)?"
_LABEL = r"^\s*(?:[-*>•]\s*)?(?:\d+\s*[.)]\s*)?" + _MARK + r"\s*{word}\s*\d*\s*" + _MARK + r"\s*:\s*" + _MARK
_QUESTION = re.compile(_LABEL.format(word=r"(?:q|question)") + r"\s*(.*)$", re.IGNORECASE)
_ANSWER = re.compile(_LABEL.format(word=r"(?:a|answer)") + r"\s*(.*)$", re.IGNORECASE)
_INLINE_ANSWER = re.compile(r"\s" + _MARK + r"(?:a|answer)\s*\d*" + _MARK + r"\s*:\s*" + _MARK, re.IGNORECASE)
_PAIR = re.compile(r'"question"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"answer"\s*:\s*"((?:[^"\\]|\\.)*)"', re.DOTALL)


@dataclass(frozen=True)
class ParsedQA:
    question: str
    answer: str
    truncated: bool = False


@dataclass
class ParseResult:
    """Pairs found in one response and how they were read ("json", "json_salvaged", "text", "none")."""

    pairs: list[ParsedQA] = field(default_factory=list)
    format: str = "none"


def parse_qa_response(text: str, finish_reason: str = "stop") -> ParseResult:
    """Parse one response into pairs.

    Args:
        text: the model's output.
        finish_reason: "length" marks the output as cut off; the last text-format pair is then
            flagged `truncated` (complete JSON pairs are kept, since their strings are closed).

    Returns:
        The pairs (possibly none, format "none", when nothing could be read).
    """
    cut = finish_reason == "length"
    pairs = _from_json(text)
    if pairs is not None:
        return ParseResult(pairs, "json")
    salvaged = [ParsedQA(_unescape(q), _unescape(a)) for q, a in _PAIR.findall(text)]
    if salvaged:
        return ParseResult(salvaged, "json_salvaged")
    pairs = _from_text(text)
    if pairs and cut:
        pairs[-1] = ParsedQA(pairs[-1].question, pairs[-1].answer, truncated=True)
    return ParseResult(pairs, "text" if pairs else "none")


def _strip_fences(text: str) -> str:
    return "\n".join(line for line in text.strip().splitlines() if not _FENCE.match(line))


def _from_json(text: str) -> list[ParsedQA] | None:
    body = _strip_fences(text)
    start = min((i for i in (body.find("{"), body.find("[")) if i >= 0), default=-1)
    if start < 0:
        return None
    try:
        data = json.loads(body[start:])
    except json.JSONDecodeError:
        return None
    items = _qa_items(data)
    if items is None:
        return None
    pairs = []
    for item in items:
        lowered = {str(k).lower(): v for k, v in item.items()}
        question = lowered.get("question", lowered.get("q"))
        answer = lowered.get("answer", lowered.get("a"))
        if question is not None or answer is not None:
            pairs.append(ParsedQA(str(question or "").strip(), str(answer or "").strip()))
    return pairs


def _qa_items(data: Any) -> list[dict] | None:
    """The list of pair objects: the top level, or the first list value of an object."""
    if isinstance(data, list):
        return [d for d in data if isinstance(d, dict)]
    if isinstance(data, dict):
        if any(k.lower() in ("question", "q") for k in data):
            return [data]
        for value in data.values():
            if isinstance(value, list):
                return [d for d in value if isinstance(d, dict)]
    return None


def _unescape(value: str) -> str:
    try:
        return json.loads(f'"{value}"').strip()
    except json.JSONDecodeError:
        return value.strip()


def _clean(lines: list[str]) -> str:
    text = " ".join(line.strip() for line in lines if line.strip())
    return re.sub(r"^(?:\*\*|__)|(?:\*\*|__)$", "", text.strip()).strip()


def _from_text(text: str) -> list[ParsedQA]:
    pairs: list[ParsedQA] = []
    question: list[str] | None = None
    answer: list[str] | None = None

    def flush() -> None:
        if question is not None:
            pairs.append(ParsedQA(_clean(question), _clean(answer or [])))

    for line in text.splitlines():
        if _FENCE.match(line):
            continue
        q_match, a_match = _QUESTION.match(line), _ANSWER.match(line)
        if q_match:
            flush()
            content = q_match.group(1)
            inline = _INLINE_ANSWER.search(content)
            if inline:  # "Q: ... A: ..." on one line
                question, answer = [content[:inline.start()]], [content[inline.end():]]
            else:
                question, answer = [content], None
        elif a_match and question is not None:
            answer = [a_match.group(1)]
        elif answer is not None:
            answer.append(line)
        elif question is not None:
            question.append(line)
    flush()
    return pairs
