"""The answer lexicon: `answer_lexicon.yaml`'s phrasings, the clinical synonyms of
`dataset/clinical/amd_oct.yaml` and the negation cues of `dataset/clinical/negation.yaml`,
compiled once into the regexes `evaluation.parser` matches answers with."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from dataset.clinical import REFERRALS, STAGES, load_knowledge, load_negation_cues
from evaluation.tasks import PRESENT

LEXICON_FILE = Path(__file__).with_name("answer_lexicon.yaml")
FLAGS = re.IGNORECASE
SINGLE_KEYS = ("negation_before", "list_negation", "negation_after", "affirmation_after", "scope_break",
               "answer_cue", "contrast_cue", "hedge", "yes_answer", "no_answer", "healthy_absent",
               "attribute_separator", "negative_value", "value_denies_finding", "negative_label", "any_label",
               "fluid_absent", "activity_inactive", "activity_active", "stated_after", "concession",
               "shared_head")


def _compile(patterns: list[str]) -> list[re.Pattern]:
    return [re.compile(p, FLAGS) for p in patterns]


def _phrase_pattern(phrase: str) -> str:
    """A regex for a display name or id: words joined by spaces, underscores or hyphens, brackets
    optional, a trailing 'AMD' optional."""
    words = re.findall(r"[a-z0-9]+", phrase.lower().replace("amd", ""))
    body = r"[\s_-]*\(?".join(re.escape(w) for w in words)
    return rf"\b{body}\)?(?:\s+AMD)?\b"


@dataclass(frozen=True)
class Lexicon:
    """The compiled `answer_lexicon.yaml` plus clinical synonyms and negation cues."""

    classes: dict[str, list[tuple[str | None, re.Pattern]]]  # task kind or biomarker id -> patterns
    negation_before: re.Pattern
    list_negation: re.Pattern
    negation_after: re.Pattern
    affirmation_after: re.Pattern
    scope_break: re.Pattern
    answer_cue: re.Pattern
    contrast_cue: re.Pattern
    hedge: re.Pattern
    yes_answer: re.Pattern
    no_answer: re.Pattern
    healthy_absent: re.Pattern
    attribute_separator: re.Pattern
    negative_value: re.Pattern
    value_denies_finding: re.Pattern
    negative_label: re.Pattern
    any_label: re.Pattern
    fluid_absent: re.Pattern
    activity_inactive: re.Pattern
    activity_active: re.Pattern
    stated_after: re.Pattern
    concession: re.Pattern
    shared_head: re.Pattern
    stated_cues: dict[str, re.Pattern]  # task kind -> cue that states the answer


def _check_ids(section: dict, known: tuple[str, ...], name: str, path: Path) -> None:
    unknown = set(section) - set(known)
    missing = set(known) - set(section)
    if unknown or missing:
        raise ValueError(f"{path}: section {name!r} must list exactly {', '.join(known)} "
                         f"(unknown: {sorted(unknown)}, missing: {sorted(missing)})")


@lru_cache(maxsize=None)
def load_lexicon(path: str | Path = LEXICON_FILE) -> Lexicon:
    """Read and compile the answer lexicon, with the negation cues of `dataset.clinical`.

    Raises:
        ValueError: a class id is not a stage / referral id of `dataset.clinical`.
    """
    path = Path(path)
    raw = {**yaml.safe_load(path.read_text()), **asdict(load_negation_cues().answers)}
    _check_ids(raw["stages"], STAGES, "stages", path)
    _check_ids(raw["referrals"], REFERRALS, "referrals", path)
    raw["stages"] = {k: _expand(v, raw.get("placeholders", {})) for k, v in raw["stages"].items()}
    raw["referrals"] = {k: _expand(v, raw.get("referral_placeholders", {})) for k, v in raw["referrals"].items()}
    knowledge = load_knowledge()
    staging: list[tuple[str | None, re.Pattern]] = []
    for stage in knowledge.stages:
        # Single words ("early") are too loose as free phrases ("early signs", "intermediate-sized
        # drusen"); the lexicon's context-checked patterns and `_exact` cover them.
        extra = [_phrase_pattern(p) for p in (stage.id, stage.name)
                 if len(re.findall(r"[a-z0-9]+", p.lower().replace("amd", ""))) > 1]
        staging += [(stage.id, p) for p in _compile(raw["stages"][stage.id] + extra)]
    staging += [(None, p) for p in _compile(raw["ambiguous_stages"])]
    # Referral display names such as "not seen" are too common as plain phrases ("fluid is not
    # seen"); only the lexicon's phrasings and the underscored ids count.
    referral = [(r, p) for r in REFERRALS
                for p in _compile(raw["referrals"][r] + [rf"\b{re.escape(r)}\b"])]
    classes: dict[str, list[tuple[str | None, re.Pattern]]] = {"staging": staging, "referral": referral}
    for biomarker in knowledge.biomarkers.values():
        phrases = sorted({biomarker.name, biomarker.id, *biomarker.synonyms}, key=len, reverse=True)
        classes[biomarker.id] = [(PRESENT, re.compile(_phrase_pattern(p) if "_" in p else
                                                      rf"\b{re.escape(p)}\b", FLAGS)) for p in phrases]
    single = {k: re.compile(raw[k], FLAGS) for k in SINGLE_KEYS}
    stated = {kind: re.compile(pattern, FLAGS) for kind, pattern in raw["stated_cues"].items()}
    return Lexicon(classes=classes, stated_cues=stated, **single)


def _expand(patterns: list[str], placeholders: dict[str, str]) -> list[str]:
    """Patterns with each `{NAME}` placeholder replaced by its (non-capturing) regex."""
    out = []
    for pattern in patterns:
        for name, value in placeholders.items():
            pattern = pattern.replace("{" + name + "}", f"(?:{value})")
        out.append(pattern)
    return out
