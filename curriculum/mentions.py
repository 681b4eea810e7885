"""Find which stages, referral outcomes and biomarkers a piece of text asserts.

The vocabulary comes from `dataset.clinical` (stage, stage-group and referral names and ids,
biomarker names and synonyms, attribute values); only the wording variants are made here. A
mention preceded, within its clause, by a negation or contrast cue ("not", "no", "than",
"rather", "without", "would", ...; the `mentions` cues of `dataset/clinical/negation.yaml`) is not
an assertion: "intermediate AMD, not late dry AMD" asserts intermediate only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

from dataset.clinical import load_knowledge, load_negation_cues

_NEGATION = load_negation_cues().mentions
_CLAUSE = re.compile(_NEGATION.clause_break)
_STAGE_LABELS = ("stage", "diagnosis", "impression")
_STAGE_LABEL = re.compile(rf"\b({'|'.join(_STAGE_LABELS)})\s*:\s*", re.IGNORECASE)


def normalise(text: str) -> list[str]:
    """Lower-case word tokens; "isn't" becomes "is not", punctuation and hyphens split words."""
    text = re.sub(r"n't\b", " not", text.lower())
    return re.findall(r"[a-z0-9]+", text)


@dataclass
class Vocabulary:
    """Phrase (token tuple) -> the label ids it is compatible with, for one kind of label."""

    phrases: dict[tuple[str, ...], frozenset[str]]

    @cached_property
    def _first_tokens(self) -> dict[str, int]:
        """First word of every phrase -> the longest phrase length starting with it."""
        first: dict[str, int] = {}
        for phrase in self.phrases:
            first[phrase[0]] = max(first.get(phrase[0], 0), len(phrase))
        return first

    def find(self, text: str, negation_aware: bool = True) -> list[frozenset[str]]:
        """Compatible-label sets of every asserted (non-negated) mention in `text`, longest match first."""
        found = []
        for clause in _CLAUSE.split(text):
            tokens = normalise(clause)
            i = 0
            while i < len(tokens):
                match = self._longest(tokens, i)
                if match is None:
                    i += 1
                    continue
                length, labels = match
                window = tokens[max(0, i - _NEGATION.window):i]
                if not (negation_aware and _NEGATION.cue_words.intersection(window)):
                    found.append(labels)
                i += length
        return found

    def _longest(self, tokens: list[str], start: int) -> tuple[int, frozenset[str]] | None:
        longest = self._first_tokens.get(tokens[start])
        if longest is None:  # no phrase starts with this word: the common case, kept cheap
            return None
        for length in range(min(longest, len(tokens) - start), 0, -1):
            labels = self.phrases.get(tuple(tokens[start:start + length]))
            if labels is not None:
                return length, labels
        return None


def _add(phrases: dict, text: str, labels: set[str]) -> None:
    key = tuple(normalise(text))
    if key:
        phrases[key] = frozenset(labels) | phrases.get(key, frozenset())


@lru_cache(maxsize=1)
def stage_vocabulary() -> Vocabulary:
    """Stage names, ids and stage-group names -> stage ids."""
    knowledge = load_knowledge()
    phrases: dict[tuple[str, ...], frozenset[str]] = {}
    for stage in knowledge.stages:
        if stage.id == "healthy":
            continue  # "healthy" alone describes tissue too often; handled below
        _add(phrases, stage.name, {stage.id})
        _add(phrases, stage.id.replace("_", " ") + " amd", {stage.id})
        base, _, qualifier = stage.name.partition("(")
        if qualifier:  # "late wet AMD (active)" -> "active late wet AMD"
            _add(phrases, f"{qualifier.strip(' )')} {base}", {stage.id})
    for group, members in knowledge.stage_groups.items():
        if group != "healthy":
            _add(phrases, group.replace("_", " ") + " amd", set(members))
    late = {s.id for s in knowledge.stages if s.id.startswith("late")}
    wet = {s for s in late if "wet" in s}
    for text, labels in (("late amd", late), ("wet amd", wet), ("neovascular amd", wet),
                         ("dry amd", {s.id for s in knowledge.stages} - wet - {"healthy"})):
        _add(phrases, text, labels)
    for text in ("healthy retina", "healthy eye", "healthy scan", "healthy macula", "no amd",
                 "no signs of amd", "no sign of amd", "no evidence of amd"):
        _add(phrases, text, {"healthy"})
    for subject in ("scan", "retina", "eye", "macula"):  # "Overall, the scan is healthy."
        for verb in ("is", "appears", "looks"):
            _add(phrases, f"{subject} {verb} healthy", {"healthy"})
    for label in _STAGE_LABELS:  # "Stage: healthy." (the label joins its value; see stated_stages)
        _add(phrases, f"{label} healthy", {"healthy"})
    return Vocabulary(phrases)


@lru_cache(maxsize=1)
def triage_vocabulary() -> Vocabulary:
    """Clinic triage names -> triage ids (the `referral` column)."""
    phrases: dict[tuple[str, ...], frozenset[str]] = {}
    for outcome in load_knowledge().referral:
        if outcome.id != "not_seen":  # "not seen" is everyday language ("fluid is not seen")
            _add(phrases, outcome.name, {outcome.id})
        _add(phrases, outcome.id.replace("_", " ") + " referral", {outcome.id})
    _add(phrases, "within two weeks", {"within_two_weeks"})
    _add(phrases, "does not need to be seen", {"not_seen"})
    return Vocabulary(phrases)


@lru_cache(maxsize=1)
def treatment_vocabulary() -> Vocabulary:
    """Treatment-referral names -> treatment ids (the `referral_treatment` column)."""
    phrases: dict[tuple[str, ...], frozenset[str]] = {}
    for outcome in load_knowledge().referral_treatment:
        _add(phrases, outcome.name, {outcome.id})
        _add(phrases, outcome.id.replace("_", " "), {outcome.id})
    _add(phrases, "urgent referral", {"urgent_treatment"})
    _add(phrases, "anti vegf treatment", {"urgent_treatment"})
    return Vocabulary(phrases)


@lru_cache(maxsize=1)
def term_vocabulary() -> Vocabulary:
    """Clinical terms a question could give away: biomarkers (by synonym), attribute values, stages."""
    knowledge = load_knowledge()
    phrases: dict[tuple[str, ...], frozenset[str]] = {}
    for biomarker in knowledge.biomarkers.values():
        for text in (biomarker.name, *biomarker.synonyms):
            _add(phrases, text, {f"biomarker:{biomarker.id}"})
        for attribute, values in biomarker.attributes.items():
            for value in values:
                if isinstance(value, str):
                    _add(phrases, value, {f"{attribute}:{value.lower()}"})
    for key, labels in stage_vocabulary().phrases.items():
        phrases[key] = frozenset(f"stage:{s}" for s in labels)
    return Vocabulary(phrases)


def stated_stages(text: str) -> set[str]:
    """Stage ids some asserted mention in `text` is compatible with (empty: no stage stated)."""
    if not text:
        return set()
    # A colon ends a clause, but not between a stage label and its value ("Stage: healthy.").
    return set().union(*stage_vocabulary().find(_STAGE_LABEL.sub(r"\1 ", text)))


# A labelled referral sentence, as reports word it ("Referral: ...", "Recommendation: not seen.").
_REFERRAL_LABEL = re.compile(r"\b(?:referral|recommendation|suggested management|triage)\s*:", re.IGNORECASE)


def states_referral(text: str) -> bool:
    """Whether `text` states a referral: a labelled referral sentence or a triage/treatment name."""
    return bool(text) and bool(_REFERRAL_LABEL.search(text) or triage_vocabulary().find(text)
                               or treatment_vocabulary().find(text))
