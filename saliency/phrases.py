"""Finding the phrases of a report that name findings.

The vocabulary comes from the clinical knowledge (`dataset.clinical`: each biomarker's display name
and synonyms), optionally narrowed to some biomarkers and widened with extra synonyms from config.
Matching is case-insensitive on word boundaries, longest term first, without overlaps, so
"subretinal hyperreflective material" is one phrase and "PED" never matches inside "PEDs-like".

Negation is a small, documented heuristic (a cue word before the phrase in the same clause, or an
absence word after it before the next finding; the `reports` cues of
`dataset/clinical/negation.yaml`): reports state key absences ("no subretinal fluid") and a
Grad-CAM map for an absent finding has no lesion to point at.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from dataset.clinical import ClinicalKnowledge, load_knowledge, load_negation_cues

_CLAUSE_END = re.compile(r"[.;:!?\n]")


@dataclass(frozen=True)
class VocabularyTerm:
    """One matchable term and the biomarker it names."""

    text: str
    biomarker: str


@dataclass(frozen=True)
class Phrase:
    """A finding named in a report: the matched text, its character span and its biomarker.

    `index` numbers the phrases of one report in reading order; `negated` says whether the report
    states the finding as absent.
    """

    index: int
    text: str
    start: int
    end: int
    biomarker: str
    negated: bool

    @property
    def slug(self) -> str:
        """File-name-safe label, unique within a report (`03_subretinal_fluid`)."""
        words = re.sub(r"[^a-z0-9]+", "_", self.text.lower()).strip("_")
        return f"{self.index:02d}_{words or self.biomarker}"

    def to_dict(self) -> dict:
        return asdict(self)


class PhraseVocabulary:
    """Terms naming findings, compiled into one longest-first regular expression.

    A cue list left None is the shipped one (`reports` in `dataset/clinical/negation.yaml`).

    Args:
        terms: the terms; duplicates (case-insensitive) must name the same biomarker.
        pre_negation_cues: words that negate a following finding in the same clause.
        post_negation_cues: words that negate a preceding finding ("fluid is absent").
        scope_breaks: words that end a pre-negation cue's scope.

    Raises:
        ValueError: no terms, or one term assigned to two biomarkers.
    """

    def __init__(self, terms: Iterable[VocabularyTerm], pre_negation_cues: Sequence[str] | None = None,
                 post_negation_cues: Sequence[str] | None = None, scope_breaks: Sequence[str] | None = None):
        cues = load_negation_cues().reports
        self.terms: dict[str, VocabularyTerm] = {}
        for term in terms:
            key = term.text.strip().lower()
            if not key:
                continue
            known = self.terms.get(key)
            if known and known.biomarker != term.biomarker:
                raise ValueError(f"phrase vocabulary: term {term.text!r} names both {known.biomarker!r} and "
                                 f"{term.biomarker!r}; remove it from one biomarker's synonyms")
            self.terms[key] = VocabularyTerm(term.text.strip(), term.biomarker)
        if not self.terms:
            raise ValueError("phrase vocabulary is empty; check saliency.vocabulary.biomarkers in the task config")
        ordered = sorted(self.terms, key=len, reverse=True)
        # (?<![\w-]) / (?![\w-]): whole words only, and hyphenated words count as one word.
        self._pattern = re.compile(r"(?<![\w-])(" + "|".join(re.escape(t) for t in ordered) + r")(?![\w-])",
                                   re.IGNORECASE)
        self._pre = _word_pattern(cues.pre_negation_cues if pre_negation_cues is None else pre_negation_cues)
        self._post = _word_pattern(cues.post_negation_cues if post_negation_cues is None else post_negation_cues)
        self._breaks = _word_pattern(cues.scope_breaks if scope_breaks is None else scope_breaks)

    @property
    def biomarkers(self) -> list[str]:
        return sorted({t.biomarker for t in self.terms.values()})

    def find(self, report: str, include_negated: bool = True) -> list[Phrase]:
        """The findings named in `report`, in reading order.

        Args:
            report: free text.
            include_negated: keep phrases the report states as absent (marked `negated`).

        Returns:
            Non-overlapping phrases, numbered from 0 in reading order.
        """
        matches = list(self._pattern.finditer(report))
        phrases = []
        for i, match in enumerate(matches):
            next_start = matches[i + 1].start() if i + 1 < len(matches) else len(report)
            negated = self._is_negated(report, match.start(), match.end(), next_start)
            if negated and not include_negated:
                continue
            term = self.terms[match.group(1).lower()]
            phrases.append(Phrase(len(phrases), match.group(1), match.start(), match.end(), term.biomarker, negated))
        return phrases

    def _is_negated(self, report: str, start: int, end: int, next_start: int) -> bool:
        clause_start = max((m.end() for m in _CLAUSE_END.finditer(report, 0, start)), default=0)
        before = report[clause_start:start]
        # "No, drusen and SRF" answers a yes/no question: a cue followed by a comma is an interjection.
        cues = [c for c in (self._pre.finditer(before) if self._pre else [])
                if not before[c.end():].lstrip().startswith(",")]
        if cues:
            after_cue = before[cues[-1].end():]
            if not (self._breaks and self._breaks.search(after_cue)):
                return True
        clause_end = _CLAUSE_END.search(report, end)
        stop = min(next_start, clause_end.start() if clause_end else len(report))
        after = report[end:stop]
        return bool(self._post and self._post.search(after))


def _word_pattern(words: Sequence[str]) -> re.Pattern | None:
    words = [w.strip() for w in words if w and w.strip()]
    if not words:
        return None
    ordered = sorted(words, key=len, reverse=True)
    return re.compile(r"(?<![\w-])(?:" + "|".join(re.escape(w) for w in ordered) + r")(?![\w-])", re.IGNORECASE)


def build_vocabulary(biomarkers: Sequence[str] | None = None,
                     extra_synonyms: Mapping[str, Sequence[str]] | None = None,
                     exclude_terms: Sequence[str] = (),
                     knowledge: ClinicalKnowledge | None = None,
                     **negation: Sequence[str] | None) -> PhraseVocabulary:
    """Build the vocabulary from the clinical knowledge plus configured extras.

    Args:
        biomarkers: biomarker ids to look for; None means every biomarker in the knowledge.
        extra_synonyms: more terms per biomarker id (e.g. {"srf": ["subretinal fluid pocket"]}).
        exclude_terms: terms to drop (case-insensitive), e.g. ambiguous abbreviations.
        knowledge: clinical knowledge; the shipped AMD file by default.
        **negation: `pre_negation_cues`, `post_negation_cues`, `scope_breaks` overrides of the
            shipped lists (None keeps the shipped list).

    Returns:
        The compiled vocabulary.

    Raises:
        ValueError: an unknown biomarker id (the message lists the known ones).
    """
    knowledge = knowledge or load_knowledge()
    known = knowledge.biomarkers
    wanted = list(biomarkers) if biomarkers is not None else list(known)
    extra = dict(extra_synonyms or {})
    unknown = sorted((set(wanted) | set(extra)) - set(known))
    if unknown:
        raise ValueError(f"phrase vocabulary: unknown biomarker id(s) {unknown}; known: {sorted(known)}")
    excluded = {t.strip().lower() for t in exclude_terms}
    terms = []
    for biomarker_id in wanted:
        biomarker = known[biomarker_id]
        for text in [biomarker.name, *biomarker.synonyms, *extra.get(biomarker_id, [])]:
            if text.strip().lower() not in excluded:
                terms.append(VocabularyTerm(text, biomarker_id))
    return PhraseVocabulary(terms, **negation)
