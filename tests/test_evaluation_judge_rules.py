"""The offline rule judge reads stage, referral and findings from whole reports: structured
"finding: value" lines, qualifiers after commas, negated time frames, and the stated stage over
stages a report names only to rule them out (the reports of issues 13 and 14)."""

import pytest

from evaluation.judge import RuleJudge
from evaluation.tasks import build_tasks

TASKS = [t for group in ("staging", "referral", "biomarkers")
         for t in build_tasks(group, {"question": "Is there {biomarker}?"})]

REPORTS = [
    ("Drusen: small, nasal. SHRM: absent. Subretinal fluid: absent. Intraretinal fluid: none. Stage: early AMD. "
     "Referral: routine referral.",
     {"staging": "early", "referral": "routine", "biomarker_drusen": "present", "biomarker_shrm": "absent",
      "biomarker_srf": "absent", "biomarker_irf": "absent"}),
    ("Subretinal hyperreflective material and a fibrotic scar nasally. Subretinal fluid: absent. "
     "Intraretinal fluid: absent. This is late wet AMD, currently inactive. The patient does not need to be seen "
     "within two weeks; a routine referral is appropriate.",
     {"staging": "late_wet_inactive", "referral": "routine", "biomarker_shrm": "present",
      "biomarker_srf": "absent", "biomarker_irf": "absent"}),
    ("Stage: intermediate AMD, since the large drusen place it there. It is not late wet AMD (inactive), because "
     "nothing meets its criteria. Triage: routine referral. Any sign of late wet AMD (inactive) would need SHRM. "
     "It is more advanced than early AMD. Drusen: large. SHRM: absent.",
     {"staging": "intermediate", "referral": "routine", "biomarker_drusen": "present", "biomarker_shrm": "absent"}),
    ("Large subretinal fluid at the fovea with intraretinal cysts; drusen: none. Late wet AMD, currently active. "
     "The patient must be seen within the next two weeks.",
     {"staging": "late_wet_active", "referral": "within_two_weeks", "biomarker_srf": "present",
      "biomarker_irf": "present", "biomarker_drusen": "absent"}),
    ("Normal retinal layers. Absent: drusen, SHRM, subretinal fluid, intraretinal fluid. Stage: healthy. "
     "Triage: not seen.",
     {"staging": "healthy", "referral": "not_seen", "biomarker_drusen": "absent", "biomarker_shrm": "absent",
      "biomarker_srf": "absent", "biomarker_irf": "absent"}),
]


@pytest.mark.parametrize("report,expected", REPORTS)
def test_rule_judge_reads_each_report(report, expected):
    found = RuleJudge().extract([report], TASKS)[0]
    assert {name: found[name] for name in expected} == expected


def test_rule_judge_counts_an_unmentioned_finding_as_absent_but_keeps_an_unstated_stage_invalid():
    found = RuleJudge().extract(["Drusen: large, nasal."], TASKS)[0]
    assert found["biomarker_drusen"] == "present" and found["biomarker_srf"] == "absent"
    assert found["staging"] is None and found["referral"] is None
