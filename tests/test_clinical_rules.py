"""Stage and referral rules against cases built from CLINICAL.md."""

import pytest

from dataset.clinical import (
    EVALUATION_BIOMARKERS,
    REFERRALS,
    STAGES,
    referral_from_findings,
    stage_from_findings,
    stage_group,
    treatment_referral_from_findings,
    triage_to_treatment,
)

CASES = [
    # findings, stage, triage referral, treatment referral
    ({}, "healthy", "not_seen", "no_referral"),
    ({"other_pathology": 1}, "healthy", "not_seen", "no_referral"),
    ({"drusen": 1, "drusen_size": "small"}, "early", "routine", "no_referral"),
    ({"drusen": 1, "drusen_size": "medium", "rpe_elevation": 1}, "early", "routine", "no_referral"),
    ({"drusen": 1, "drusen_size": "large"}, "intermediate", "routine", "no_referral"),
    ({"ped": 1, "ped_type": "drusenoid"}, "intermediate", "routine", "no_referral"),
    ({"ped": 1, "ped_type": "serous"}, "intermediate", "routine", "no_referral"),
    ({"double_layer_sign": 1}, "intermediate", "routine", "no_referral"),
    ({"hypertransmission": 1, "hypertransmission_type": "iRORA", "rpe_atrophy": 1,
      "rpe_atrophy_state": "degeneration"}, "intermediate", "routine", "no_referral"),
    ({"hypertransmission": 1, "hypertransmission_type": "cRORA", "rpe_atrophy": 1,
      "rpe_atrophy_state": "atrophy"}, "late_dry", "routine", "general_attention"),
    ({"rpe_atrophy": 1, "rpe_atrophy_state": "atrophy", "drusen": 1, "drusen_size": "large"},
     "late_dry", "routine", "general_attention"),
    ({"shrm": 1}, "late_wet_inactive", "routine", "general_attention"),
    ({"fibrosis": 1}, "late_wet_inactive", "routine", "general_attention"),
    ({"ped": 1, "ped_type": "fibrovascular"}, "late_wet_inactive", "routine", "general_attention"),
    ({"srf": 1}, "late_wet_active", "within_two_weeks", "urgent_treatment"),
    ({"irf": 1, "fibrosis": 1}, "late_wet_active", "within_two_weeks", "urgent_treatment"),
    ({"irf": 1, "hypertransmission": 1, "hypertransmission_type": "cRORA"},
     "late_wet_active", "within_two_weeks", "urgent_treatment"),
    # Absent attributes of an absent biomarker are ignored; strings and NaN follow the default.
    ({"drusen": 0, "drusen_size": "large"}, "healthy", "not_seen", "no_referral"),
    ({"srf": "no", "irf": float("nan"), "drusen": "yes", "drusen_size": "small"}, "early", "routine", "no_referral"),
]


@pytest.mark.parametrize("findings,stage,triage,treatment", CASES)
def test_rules(findings, stage, triage, treatment):
    assert stage_from_findings(findings) == stage
    assert referral_from_findings(findings) == triage
    assert treatment_referral_from_findings(findings) == treatment


def test_schemes_map_onto_each_other():
    assert [triage_to_treatment(r) for r in REFERRALS] == ["no_referral", "general_attention", "urgent_treatment"]


def test_every_stage_is_reachable_and_grouped():
    assert {c[1] for c in CASES} == set(STAGES)
    assert {stage_group(s) for s in STAGES} == {"healthy", "early_or_intermediate", "late_dry", "late_wet"}


def test_ten_evaluation_biomarkers_each_their_own_column():
    assert len(EVALUATION_BIOMARKERS) == 10 == len(set(EVALUATION_BIOMARKERS))
    assert "double_layer_sign" in EVALUATION_BIOMARKERS and "rpe_elevation" in EVALUATION_BIOMARKERS
