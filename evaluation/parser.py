"""Map a free-text answer to a task's class, aware of negation and word order.

"No signs of late wet AMD; this is intermediate AMD" names two stages; the first is denied, so the
answer is intermediate. The parser finds every mention of a class (phrasings in
`answer_lexicon.yaml`, biomarker synonyms in `dataset/clinical/amd_oct.yaml`), decides for each
whether it is asserted or denied (a negation or comparison cue earlier in the same clause, a
denial right after it, a negative value after a separator as in "SHRM: absent" or "IRF: no cysts",
or a negative label heading a list as in "Absent: SHRM, SRF"), ranks the asserted ones (a stated
answer naming the task, "Stage: X" / "The stage is X" / "Triage: X" > after an answer cue > after
a contrast > plain) and returns the winner, or None (invalid) when nothing maps or the answer
hedges between classes. A mention of late wet AMD without its activity takes the activity from the
rest of the answer (an explicit word, else whether it names fluid); without either it is invalid.
A finding named with its abbreviation ("Intraretinal fluid (IRF)") is one mention, and two
findings that share a head noun ("no subretinal or intraretinal fluid") are read as both named in
full.

Hand-written because no well-kept library parses clinical answers; negation handling follows the
NegEx idea (trigger words with a clause-bounded scope, from `dataset/clinical/negation.yaml`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dataset.clinical import load_knowledge
from evaluation.lexicon import Lexicon, load_lexicon
from evaluation.tasks import ABSENT, PRESENT, Task

TIER_PLAIN, TIER_CONTRAST, TIER_ANSWER, TIER_STATED = 1, 2, 3, 4
SENTENCE_END = re.compile(r"[.!?\n]")
LABEL_SCOPE_END = re.compile(r"[.!?]|\n\s*\n")  # a labelled list runs over line breaks, not sentences
ALIAS_JOIN = re.compile(r"\s*(?:[(\[]|/)\s*")  # "Intraretinal fluid (IRF", "fluid/cysts"


@dataclass(frozen=True)
class Mention:
    """A class named in an answer: span, class (None for an unspecific group), denial, rank."""

    start: int
    end: int
    value: str | None
    negated: bool
    tier: int


def _find_spans(text: str,
                patterns: list[tuple[str | None, re.Pattern]]) -> list[tuple[int, int, str | None]]:
    """All class mentions, overlaps resolved in favour of the longer (more specific) phrase."""
    found = [(m.start(), m.end(), value) for value, pattern in patterns for m in pattern.finditer(text)
             if m.end() > m.start()]
    found.sort(key=lambda s: (-(s[1] - s[0]), s[0]))
    kept: list[tuple[int, int, str | None]] = []
    for span in found:
        if all(span[1] <= k[0] or span[0] >= k[1] for k in kept):
            kept.append(span)
    return sorted(kept)


def _merge_aliases(text: str, spans: list[tuple[int, int, str | None]]) -> list[tuple[int, int, str | None]]:
    """One finding named twice in a row is one mention: "Intraretinal fluid (IRF)", "fluid/cysts"; a
    denial before the first name or a value after the second reads for both."""
    merged: list[tuple[int, int, str | None]] = []
    for span in spans:
        if merged and merged[-1][2] == span[2] and ALIAS_JOIN.fullmatch(text[merged[-1][1]:span[0]]):
            merged[-1] = (merged[-1][0], span[1], span[2])
        else:
            merged.append(span)
    return merged


def _last_end(pattern: re.Pattern, text: str) -> int:
    ends = [m.end() for m in pattern.finditer(text)]
    return ends[-1] if ends else 0


def _under_negative_label(text: str, start: int, lex: Lexicon) -> bool:
    """Whether the mention is an item of a list headed by a negative label ("Absent: A, B")."""
    before = text[_last_end(LABEL_SCOPE_END, text[:start]):start]
    labels = list(lex.any_label.finditer(before))
    return bool(labels) and bool(lex.negative_label.search(before[labels[-1].start():labels[-1].end()]))


def _is_negated(text: str, start: int, end: int, lex: Lexicon, key: str) -> bool:
    kind = _kind(key)
    separator = lex.attribute_separator.match(text[end:])
    if separator:
        value = text[end + separator.end():]
        if lex.negative_value.match(value):
            return True  # "SHRM: absent", "Drusen - none", "SRF = 0"
        denial = lex.value_denies_finding.match(value)
        if denial and kind == "biomarker" and any(p.match(value, denial.end()) for _, p in lex.classes[key]):
            return True  # "SRF: no SRF", "IRF: there are no cysts"
    if _under_negative_label(text, start, lex):
        return True
    scope = text[_last_end(lex.scope_break, text[:start]):start]
    after = text[end:]
    next_break = lex.scope_break.search(after)
    after = after[:next_break.start()] if next_break else after
    if lex.negation_after.search(after):
        return True
    comma = scope.rfind(",")
    clause = scope[comma + 1:] if comma >= 0 else scope
    # Only what follows a stating cue can deny: "I would stage this as X" states X.
    cue_end = max(_last_end(lex.stated_cues[kind], clause), _last_end(lex.answer_cue, clause))
    if lex.negation_before.search(clause[cue_end:]):
        return True
    # "no drusen, PED or SRF" denies all three, unless the later item is affirmed ("no SRF, IRF present").
    if comma >= 0 and kind == "biomarker" and lex.list_negation.search(scope[:comma]):
        return not lex.affirmation_after.search(after)
    return False


def _tier(text: str, start: int, end: int, lex: Lexicon, kind: str) -> int:
    sentence = text[_last_end(SENTENCE_END, text[:start]):start]
    sentence = sentence[_last_end(lex.concession, sentence):]
    stated = lex.stated_cues.get(kind)
    stated_before = stated is not None and stated.search(sentence)
    if stated_before or (kind != "biomarker" and lex.stated_after.match(text[end:])):
        return TIER_STATED
    if lex.answer_cue.search(sentence):
        return TIER_ANSWER
    if lex.contrast_cue.search(sentence):
        return TIER_CONTRAST
    return TIER_PLAIN


def find_mentions(text: str, key: str, lexicon: Lexicon | None = None) -> list[Mention]:
    """Every mention of a class in `text`, in order.

    Args:
        text: the answer.
        key: `staging`, `referral` or a biomarker id.
        lexicon: default the shipped one.

    Returns:
        Mentions with their class (`present` for a biomarker), denial and rank.
    """
    lex = lexicon or load_lexicon()
    spans = _find_spans(text, lex.classes[key])
    if _kind(key) == "biomarker":
        spans = _merge_aliases(text, spans)
    return [Mention(s, e, value, _is_negated(text, s, e, lex, key), _tier(text, s, e, lex, _kind(key)))
            for s, e, value in spans]


def _kind(key: str) -> str:
    """`staging`, `referral` or `biomarker` for a lexicon class key."""
    return key if key in ("staging", "referral") else "biomarker"


def _exact(text: str, task: Task) -> str | None:
    """A bare class id or display name as the whole answer ("Late dry AMD.", "not_seen")."""
    knowledge = load_knowledge()
    cleaned = re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()
    names = {o.id: o.name for o in (knowledge.stages if task.kind == "staging" else knowledge.referral)}
    for class_id in task.classes:
        display = re.sub(r"[^a-z0-9]+", " ", names.get(class_id, "").lower()).strip()
        forms = {class_id.replace("_", " "), display}
        if cleaned in forms or cleaned in {f.replace(" amd", "").strip() for f in forms}:
            return class_id
    return None


def _choose(text: str, asserted: list[Mention], lex: Lexicon) -> str | None:
    best = max(m.tier for m in asserted)
    top = [m for m in asserted if m.tier == best]
    for left, right in zip(top, top[1:]):
        if left.value != right.value and lex.hedge.search(text[left.end:right.start]):
            return None
    if best in (TIER_ANSWER, TIER_STATED):
        # The conclusion that comes last wins; within its sentence, the first class after the cue.
        last_sentence = _last_end(SENTENCE_END, text[:top[-1].start])
        return next(m for m in top if m.start >= last_sentence).value
    if best == TIER_CONTRAST:
        return top[-1].value
    return top[0].value


def parse_answer(text: str | None, task: Task, lexicon: Lexicon | None = None) -> str | None:
    """The class an answer gives, or None when it cannot be mapped (an invalid answer).

    Args:
        text: free-text answer (None or empty is invalid).
        task: the closed-ended task asked.
        lexicon: default the shipped `answer_lexicon.yaml`.

    Returns:
        A class id of `task.classes`, or None.

    Example:
        >>> from evaluation.tasks import build_tasks
        >>> staging = build_tasks("staging", {"question": "What is the AMD stage of this scan?"})[0]
        >>> parse_answer("No signs of late wet AMD; this is intermediate AMD.", staging)
        'intermediate'
    """
    if not text or not text.strip():
        return None
    lex = lexicon or load_lexicon()
    text = expand_shared_heads(text, lex)
    if task.kind == "biomarker":
        return _parse_biomarker(text, task, lex)
    exact = _exact(text, task)
    if exact:
        return exact
    asserted = [m for m in find_mentions(text, task.kind, lex) if not m.negated]
    if not asserted:
        return None
    chosen = _choose(text, asserted, lex)
    if chosen is None and task.kind == "staging" and _only_unspecific_wet(text, asserted, lex):
        return _wet_activity(text, lex)
    return chosen


def expand_shared_heads(text: str, lexicon: Lexicon | None = None) -> str:
    """Name both findings that share a head noun in full, as `parse_answer` reads them."""
    return (lexicon or load_lexicon()).shared_head.sub(_name_both, text)


def _name_both(match: re.Match) -> str:
    """"sub- or intraretinal fluid" -> "subretinal fluid or intraretinal fluid"."""
    head = match["head"]
    return f"{match['first']}retinal {head} {match['join'].strip()} {match['second']}retinal {head}"


def _only_unspecific_wet(text: str, asserted: list[Mention], lex: Lexicon) -> bool:
    """Whether the winning mentions name only late wet AMD without its activity."""
    best = max(m.tier for m in asserted)
    top = [m for m in asserted if m.tier == best]
    return all(m.value is None for m in top) and not any(
        m.value not in (None, "late_wet_inactive", "late_wet_active") for m in asserted)


def _wet_activity(text: str, lex: Lexicon) -> str | None:
    """The activity of late wet AMD from the rest of the answer: an explicit word, else fluid."""
    if lex.activity_inactive.search(text):
        return "late_wet_inactive"
    if lex.activity_active.search(text):
        return "late_wet_active"
    fluid = [m for key in ("srf", "irf") for m in find_mentions(text, key, lex)]
    if any(not m.negated for m in fluid):
        return "late_wet_active"
    if fluid or lex.fluid_absent.search(text):
        return "late_wet_inactive"
    return None


def _parse_biomarker(text: str, task: Task, lex: Lexicon) -> str | None:
    if lex.yes_answer.search(text):
        return PRESENT
    if lex.no_answer.search(text):
        return ABSENT
    mentions = find_mentions(text, task.biomarker, lex)
    if mentions:
        best = max(m.tier for m in mentions)
        top = [m for m in mentions if m.tier == best]
        return PRESENT if any(not m.negated for m in top) else ABSENT
    if task.biomarker in ("srf", "irf") and lex.fluid_absent.search(text):
        return ABSENT
    if lex.healthy_absent.search(text):
        return ABSENT
    return None
