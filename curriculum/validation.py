"""Reject QA pairs that would teach the wrong thing, and say why.

Reasons (the keys counted in the run summary):
- `empty`: no question or no answer text.
- `truncated`: the generation hit its token cap (`finish_reason` "length") inside this pair.
- `leak`: the question gives the answer away (it already states every clinical term of the
  answer and offers no alternatives, or contains the answer verbatim).
- `contradiction`: the answer asserts a stage or referral that differs from the image's label.
- `duplicate`: the same question twice for one image.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from curriculum.mentions import (
    normalise,
    stage_vocabulary,
    term_vocabulary,
    treatment_vocabulary,
    triage_vocabulary,
)
from curriculum.parsing import ParsedQA

REASONS = ("empty", "truncated", "leak", "contradiction", "duplicate")
_POLAR = {"yes", "no"}
# "There is drusen: ..." / "There is no SRF." answers a presence question by naming the finding
# (the rules backend's default wording, `presence_answer: there_is`).
_NAMED_PRESENCE = re.compile(r"^\W*there\s+(?:is|are)\b", re.IGNORECASE)
_MIN_VERBATIM_TOKENS = 3
_HOW = re.compile(r"\bhow\s+\w+", re.IGNORECASE)


@dataclass(frozen=True)
class Labels:
    """The labels an answer must not contradict (None: unknown, not checked)."""

    stage: str | None = None
    referral: str | None = None
    referral_treatment: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Labels:
        def get(key: str) -> str | None:
            value = row.get(key)
            return str(value) if isinstance(value, str) and value else None
        return cls(get("stage"), get("referral"), get("referral_treatment"))


def question_leaks_answer(question: str, answer: str) -> bool:
    """Whether `question` reveals `answer`.

    Answers to a presence question ("yes"/"no", or "there is (no) X") are not checked: naming
    the finding is how such a question is asked.
    """
    # "How large ...?" / "How many ...?" ask for a value; the word after "how" is not a value.
    question = _HOW.sub("how", question)
    q_tokens, a_tokens = normalise(question), normalise(answer)
    if not a_tokens or a_tokens[0] in _POLAR or _NAMED_PRESENCE.match(answer):
        return False
    vocabulary = term_vocabulary()
    answer_terms = set().union(*vocabulary.find(answer, negation_aware=False), set())
    question_terms = set().union(*vocabulary.find(question, negation_aware=False), set())
    if _offers_alternatives(q_tokens, question_terms, answer_terms):
        return False
    if len(a_tokens) >= _MIN_VERBATIM_TOKENS and f" {' '.join(a_tokens)} " in f" {' '.join(q_tokens)} ":
        return True
    return bool(answer_terms) and answer_terms <= question_terms


def _offers_alternatives(q_tokens: list[str], question_terms: set[str], answer_terms: set[str]) -> bool:
    """A choice question ("small, medium or large?") names the answer among other options."""
    if "or" in q_tokens:
        return True
    categories = {t.split(":")[0] for t in answer_terms}
    others = {t for t in question_terms - answer_terms if t.split(":")[0] in categories}
    return bool(others)


def contradicts_labels(answer: str, labels: Labels) -> bool:
    """Whether the answer asserts a stage or referral outcome incompatible with the labels."""
    checks = ((stage_vocabulary(), labels.stage), (triage_vocabulary(), labels.referral),
              (treatment_vocabulary(), labels.referral_treatment))
    for vocabulary, label in checks:
        if label is None:
            continue
        if any(label not in compatible for compatible in vocabulary.find(answer)):
            return True
    return False


def rejection_reason(qa: ParsedQA, labels: Labels, seen_questions: set[str]) -> str | None:
    """The first reason to reject one parsed pair, or None to keep it.

    Args:
        qa: the parsed pair (its `truncated` flag comes from the parser).
        labels: the image's labels.
        seen_questions: normalised questions already kept for this image (updated when kept).
    """
    if not qa.question.strip() or not qa.answer.strip():
        return "empty"
    if qa.truncated:
        return "truncated"
    # A question may first quote context (a report, as in the second step of the two-step
    # protocol) that states the answer; what is asked is its last paragraph.
    if question_leaks_answer(qa.question.rsplit("\n\n", 1)[-1], qa.answer):
        return "leak"
    if contradicts_labels(qa.answer, labels):
        return "contradiction"
    key = " ".join(normalise(qa.question))
    if key in seen_questions:
        return "duplicate"
    seen_questions.add(key)
    return None
