"""Typed access to `negation.yaml`: the negation cues of each reader of free clinical text."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

NEGATION_FILE = Path(__file__).with_name("negation.yaml")


@dataclass(frozen=True)
class MentionCues:
    """`curriculum.mentions`: cue words up to `window` tokens before a mention, within its clause."""

    cue_words: frozenset[str]
    window: int
    clause_break: str  # regex that splits text into clauses


@dataclass(frozen=True)
class AnswerCues:
    """`evaluation.parser`: case-insensitive regexes; the names are the parser's lexicon keys."""

    negation_before: str
    list_negation: str
    negation_after: str
    affirmation_after: str
    scope_break: str


@dataclass(frozen=True)
class ReportCues:
    """`saliency.phrases`: whole-word phrases; the names are `PhraseVocabulary`'s arguments."""

    pre_negation_cues: tuple[str, ...]
    post_negation_cues: tuple[str, ...]
    scope_breaks: tuple[str, ...]


@dataclass(frozen=True)
class NegationCues:
    """The cues of the three readers, kept apart because each asks the text a different question."""

    mentions: MentionCues
    answers: AnswerCues
    reports: ReportCues


@lru_cache(maxsize=1)
def load_negation_cues() -> NegationCues:
    """The negation cues of `negation.yaml`, parsed once and immutable."""
    raw = yaml.safe_load(NEGATION_FILE.read_text())
    mentions, reports = raw["mentions"], raw["reports"]
    return NegationCues(
        mentions=MentionCues(cue_words=frozenset(mentions["cue_words"]), window=int(mentions["window"]),
                             clause_break=mentions["clause_break"]),
        answers=AnswerCues(**raw["answers"]),
        reports=ReportCues(**{key: tuple(words) for key, words in reports.items()}),
    )
