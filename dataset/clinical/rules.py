"""The clinical rules: stage and referral from drawn or annotated findings.

`findings` is any mapping with the annotation table's columns (a pandas row works): a boolean
column per biomarker id and `<id>_<attribute>` columns for attributes. Missing columns mean
absent/unknown, following the clinical default that a biomarker is absent unless seen.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dataset.clinical.knowledge import BIOMARKERS, STAGES, load_knowledge

FLUID = ("srf", "irf")
# Biomarkers that count as AMD signs for triage; other pathology is unrelated to AMD.
AMD_BIOMARKERS = tuple(b for b in BIOMARKERS if b != "other_pathology")


def is_present(findings: Mapping[str, Any], biomarker: str) -> bool:
    """Whether `biomarker` is marked present; missing, NaN, 0, False and 'no' all mean absent."""
    value = findings.get(biomarker, False)
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "present", "y"}
    if value is None or value != value:  # NaN check without numpy
        return False
    return bool(value)


def _attribute(findings: Mapping[str, Any], biomarker: str, attribute: str) -> str | None:
    """The attribute of a present finding; None when absent or not given (an empty cell is unknown,
    as a missing column is: "drusen, size not given" must not read as "no early AMD")."""
    value = findings.get(f"{biomarker}_{attribute}")
    if value is None or value != value or not is_present(findings, biomarker) or not str(value).strip():
        return None
    return str(value)


def present_biomarkers(findings: Mapping[str, Any]) -> list[str]:
    """Ids of the biomarkers marked present, in knowledge-file order."""
    return [b for b in BIOMARKERS if is_present(findings, b)]


def _supported_stages(findings: Mapping[str, Any]) -> set[str]:
    supported = {"healthy"}
    drusen_size = _attribute(findings, "drusen", "size")
    ped_type = _attribute(findings, "ped", "type")
    hyper_type = _attribute(findings, "hypertransmission", "type")
    atrophy_state = _attribute(findings, "rpe_atrophy", "state")

    if is_present(findings, "drusen") and drusen_size in (None, "small", "medium"):
        supported.add("early")
    if (drusen_size == "large" or ped_type in ("drusenoid", "serous")
            or is_present(findings, "double_layer_sign") or hyper_type == "iRORA"
            or atrophy_state == "degeneration"):
        supported.add("intermediate")
    if hyper_type == "cRORA" or atrophy_state == "atrophy":
        supported.add("late_dry")
    if is_present(findings, "shrm") or is_present(findings, "fibrosis") or ped_type == "fibrovascular":
        supported.add("late_wet_inactive")
    if any(is_present(findings, f) for f in FLUID):
        supported.add("late_wet_active")
    return supported


def stage_from_findings(findings: Mapping[str, Any]) -> str:
    """The most advanced stage the findings support (one of `STAGES`).

    Example:
        >>> stage_from_findings({"drusen": True, "drusen_size": "large"})
        'intermediate'
    """
    supported = _supported_stages(findings)
    return max(supported, key=STAGES.index)


def referral_from_findings(findings: Mapping[str, Any]) -> str:
    """Clinic triage outcome: `within_two_weeks` for any fluid, `routine` for any AMD sign,
    otherwise `not_seen`."""
    if any(is_present(findings, f) for f in FLUID):
        return "within_two_weeks"
    if any(is_present(findings, b) for b in AMD_BIOMARKERS):
        return "routine"
    return "not_seen"


def treatment_referral_from_findings(findings: Mapping[str, Any]) -> str:
    """Treatment-oriented outcome: urgent anti-VEGF for active wet AMD, general attention for late
    dry or inactive wet AMD, no referral otherwise."""
    stage = stage_from_findings(findings)
    if stage == "late_wet_active":
        return "urgent_treatment"
    if stage in ("late_dry", "late_wet_inactive"):
        return "general_attention"
    return "no_referral"


def triage_to_treatment(triage: str) -> str:
    """Map a triage outcome onto the treatment scheme (the mapping CLINICAL.md states)."""
    for outcome in load_knowledge().referral_treatment:
        if outcome.triage == triage:
            return outcome.id
    raise KeyError(f"unknown triage outcome {triage!r}")


def stage_group(stage: str) -> str:
    """Coarse clinic stage group (healthy, early_or_intermediate, late_dry, late_wet)."""
    for group, members in load_knowledge().stage_groups.items():
        if stage in members:
            return group
    raise KeyError(f"unknown stage {stage!r}; known: {', '.join(STAGES)}")
