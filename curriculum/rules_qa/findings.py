"""Phrases about one image's findings, built from its annotation row and the clinical rules.

Which biomarkers are present, their attributes, the stage and referral and the reasons for them
all come from `dataset.clinical`; this module only words them, with deterministic variety drawn
from a seeded `random.Random`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from dataset.clinical import (
    BIOMARKERS,
    STAGES,
    is_present,
    load_knowledge,
    present_biomarkers,
    stage_from_findings,
)

KNOWLEDGE = load_knowledge()
_LOCATIONS = {
    "foveal": ["at the fovea", "in the foveal region", "centrally, under the fovea"],
    "nasal": ["nasally", "on the nasal side", "in the nasal macula"],
    "temporal": ["temporally", "on the temporal side", "in the temporal macula"],
    "diffuse": ["diffusely across the scan", "throughout the scan", "spread across the macula"],
}
_COUNT = {"one": "a single", "few": "a few", "many": "numerous"}
_AFTER = {"type": "{v} type", "volume": "{v} volume", "amount": "{v} amount", "extent": "{v} extent",
          "severity": "{v} severity", "size": "{v} size"}


def name(biomarker: str) -> str:
    """Display name of a biomarker id."""
    return KNOWLEDGE.biomarkers[biomarker].name


def stage_name(stage: str) -> str:
    return KNOWLEDGE.stage(stage).name


def referral_name(referral: str) -> str:
    return KNOWLEDGE.referral_outcome(referral).name


def attributes(row: Mapping[str, Any], biomarker: str) -> dict[str, str]:
    """Recorded attribute values of a present biomarker (empty when absent or unrecorded)."""
    if not is_present(row, biomarker):
        return {}
    found = {}
    for attribute in KNOWLEDGE.biomarkers[biomarker].attributes:
        value = row.get(f"{biomarker}_{attribute}")
        if value is not None and value == value and str(value).strip() != "":
            found[attribute] = str(value).strip()
    return found


def location_phrase(value: str, rng: random.Random) -> str:
    return rng.choice(_LOCATIONS.get(value, [f"in the {value} region"]))


def describe(row: Mapping[str, Any], biomarker: str, rng: random.Random) -> str:
    """One present finding with its attributes, e.g. "numerous large, confluent drusen nasally"."""
    attrs = attributes(row, biomarker)
    before, after = [], []
    if "count" in attrs:
        before.append(_COUNT.get(attrs["count"], attrs["count"]))
    for attribute, value in attrs.items():
        if attribute in ("count", "location"):
            continue
        if attribute == "confluent":
            before.append("confluent" if value.lower() == "true" else "non-confluent")
        elif attribute == "size" and rng.random() < 0.5:
            before.append(value)
        else:
            after.append(_AFTER.get(attribute, "{v}").format(v=value))
    text = " ".join(before + [name(biomarker)])
    if after:
        text += f" ({', '.join(after)})"
    if "location" in attrs:
        text += " " + location_phrase(attrs["location"], rng)
    return text


def present(row: Mapping[str, Any]) -> list[str]:
    return present_biomarkers(row)


def absent(row: Mapping[str, Any]) -> list[str]:
    return [b for b in BIOMARKERS if not is_present(row, b)]


def join(items: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def findings_sentence(row: Mapping[str, Any], rng: random.Random, absences: int = 2) -> str:
    """The present findings and a few key absences, in varied wording."""
    found = [describe(row, b, rng) for b in present(row)]
    missing = [name(b) for b in rng.sample(absent(row), min(absences, len(absent(row))))]
    if found:
        text = rng.choice(["The scan shows {f}.", "There {verb} {f}.", "Findings: {f}."])
        text = text.format(f=join(found), verb="is" if len(found) == 1 else "are")
    else:
        text = rng.choice(["The retinal layers look normal, with no AMD biomarkers.",
                           "No AMD biomarkers are seen; the layers are intact."])
    if missing:
        text += " " + rng.choice(["There is no {m}.", "No {m} is seen.", "{M} is absent."]).format(
            m=" or ".join(missing), M=(" or ".join(missing))[:1].upper() + (" or ".join(missing))[1:])
    return text


def solo_stage(row: Mapping[str, Any], biomarker: str) -> str:
    """The stage this one finding (with its attributes) supports on its own, by the clinical rules."""
    alone: dict[str, Any] = {biomarker: True}
    alone.update({f"{biomarker}_{a}": v for a, v in attributes(row, biomarker).items()})
    return stage_from_findings(alone)


def decisive_findings(row: Mapping[str, Any], stage: str) -> list[str]:
    """Present biomarkers that on their own support `stage` (the reason for the stage)."""
    return [b for b in present(row) if solo_stage(row, b) == stage]


def neighbour_stages(stage: str) -> tuple[str | None, str | None]:
    """The next less and the next more advanced stage (None at either end)."""
    index = STAGES.index(stage)
    less = STAGES[index - 1] if index > 0 else None
    more = STAGES[index + 1] if index + 1 < len(STAGES) else None
    return less, more


def lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]
