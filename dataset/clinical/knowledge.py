"""Typed access to `amd_oct.yaml`, the one place the clinical facts live."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

KNOWLEDGE_FILE = Path(__file__).with_name("amd_oct.yaml")


@dataclass(frozen=True)
class Biomarker:
    """One OCT biomarker: its id (the annotation column), display name and attributes."""

    id: str
    name: str
    looks_like: str
    attributes: dict[str, list[Any]]
    synonyms: list[str] = field(default_factory=list)

    def attribute_column(self, attribute: str) -> str:
        """Annotation column holding `attribute` of this biomarker, e.g. `drusen_size`."""
        return f"{self.id}_{attribute}"


@dataclass(frozen=True)
class Outcome:
    """A stage or referral class: id, display name and the guideline sentence that defines it."""

    id: str
    name: str
    guideline: str
    triage: str | None = None


@dataclass(frozen=True)
class ClinicalKnowledge:
    specialty: str
    biomarkers: dict[str, Biomarker]
    evaluation_biomarkers: list[str]
    stages: list[Outcome]
    referral: list[Outcome]
    referral_treatment: list[Outcome]
    stage_groups: dict[str, list[str]]
    imaging: dict[str, Any]

    def stage(self, stage_id: str) -> Outcome:
        return _by_id(self.stages, stage_id, "stage")

    def referral_outcome(self, referral_id: str) -> Outcome:
        return _by_id(self.referral + self.referral_treatment, referral_id, "referral")

    def staging_guidelines(self) -> str:
        """Guideline text for all stages, one line each, for injecting into prompts."""
        return "\n".join(f"- {s.name}: {s.guideline}" for s in self.stages)

    def referral_guidelines(self) -> str:
        return "\n".join(f"- {r.name}: {r.guideline}" for r in self.referral)

    def biomarker_guidelines(self) -> str:
        return "\n".join(f"- {b.name}: {b.looks_like}" for b in self.biomarkers.values())


def _by_id(outcomes: list[Outcome], wanted: str, kind: str) -> Outcome:
    for outcome in outcomes:
        if outcome.id == wanted:
            return outcome
    known = ", ".join(o.id for o in outcomes)
    raise KeyError(f"unknown {kind} {wanted!r}; known: {known}")


@lru_cache(maxsize=None)
def load_knowledge(path: str | Path = KNOWLEDGE_FILE) -> ClinicalKnowledge:
    """Read a clinical knowledge file (the shipped AMD one by default).

    Args:
        path: YAML file with the layout of `amd_oct.yaml`.

    Returns:
        The parsed, immutable knowledge.
    """
    raw = yaml.safe_load(Path(path).read_text())
    biomarkers = {
        key: Biomarker(id=key, name=v["name"], looks_like=v["looks_like"],
                       attributes=dict(v.get("attributes") or {}), synonyms=list(v.get("synonyms") or []))
        for key, v in raw["biomarkers"].items()
    }
    return ClinicalKnowledge(
        specialty=raw["specialty"],
        biomarkers=biomarkers,
        evaluation_biomarkers=list(raw["evaluation_biomarkers"]),
        stages=[Outcome(**s) for s in raw["stages"]],
        referral=[Outcome(**r) for r in raw["referral"]],
        referral_treatment=[Outcome(**r) for r in raw["referral_treatment"]],
        stage_groups=dict(raw["stage_groups"]),
        imaging=dict(raw["imaging"]),
    )


_KNOWLEDGE = load_knowledge()
BIOMARKERS: tuple[str, ...] = tuple(_KNOWLEDGE.biomarkers)
EVALUATION_BIOMARKERS: tuple[str, ...] = tuple(_KNOWLEDGE.evaluation_biomarkers)
STAGES: tuple[str, ...] = tuple(s.id for s in _KNOWLEDGE.stages)
REFERRALS: tuple[str, ...] = tuple(r.id for r in _KNOWLEDGE.referral)
TREATMENT_REFERRALS: tuple[str, ...] = tuple(r.id for r in _KNOWLEDGE.referral_treatment)
