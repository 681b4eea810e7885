"""The answer parser against a table of tricky phrasings (negation, order, hedges, synonyms)."""

import pytest

from evaluation.parser import find_mentions, load_lexicon, parse_answer
from evaluation.tasks import build_tasks

TASKS = {t.name: t for group in ("staging", "referral", "biomarkers")
         for t in build_tasks(group, {"question": "Is there {biomarker}?"})}

STAGING = [
    ("No signs of late wet AMD; this is intermediate AMD.", "intermediate"),
    ("Intermediate AMD, not late wet.", "intermediate"),
    ("not late wet; intermediate AMD", "intermediate"),
    ("Healthy", "healthy"),
    ("healthy.", "healthy"),
    ("The retina is healthy with no signs of AMD.", "healthy"),
    ("There is no AMD.", "healthy"),
    ("The retina is not healthy: large drusen indicate intermediate AMD.", "intermediate"),
    ("Early AMD", "early"),
    ("late_dry", "late_dry"),
    ("Late wet AMD (inactive)", "late_wet_inactive"),
    ("late wet AMD (active)", "late_wet_active"),
    ("This is inactive late wet AMD, with scarring but no fluid.", "late_wet_inactive"),
    ("Active wet AMD with subretinal fluid.", "late_wet_active"),
    ("wet AMD with intraretinal fluid", "late_wet_active"),
    ("The patient has geographic atrophy.", "late_dry"),
    ("Rather than early AMD, this is intermediate AMD because the drusen are large.", "intermediate"),
    ("The stage is more advanced than early AMD: intermediate AMD.", "intermediate"),
    ("Early AMD would need only small drusen; the stage is intermediate AMD.", "intermediate"),
    ("It is either early or intermediate AMD.", None),
    ("Late wet AMD.", None),
    ("I cannot tell from this image.", None),
    ("", None),
    ("Drusen are present and SRF is absent. Therefore this is intermediate AMD.", "intermediate"),
    ("The scan shows early AMD. In conclusion, this is intermediate AMD.", "intermediate"),
    ("This looks like early AMD, but the large drusen make it intermediate AMD.", "intermediate"),
    ("No fluid is present, so this is late dry AMD rather than late wet AMD.", "late_dry"),
    ("Answer: late wet AMD, active", "late_wet_active"),
    ("There is no geographic atrophy; the stage is early AMD.", "early"),
    ("Not healthy. Late dry AMD.", "late_dry"),
    ("Intermediate-sized drusen only, so early AMD.", "early"),
    ("Neither early nor intermediate AMD; late dry AMD.", "late_dry"),
]

REFERRAL = [
    ("does not need urgent referral, routine follow-up", "routine"),
    ("Routine referral.", "routine"),
    ("not seen", "not_seen"),
    ("The patient does not need to be seen.", "not_seen"),
    ("No referral is needed; the retina is healthy.", "not_seen"),
    ("Fluid is not seen, so a routine referral is appropriate.", "routine"),
    ("Seen within two weeks because of subretinal fluid.", "within_two_weeks"),
    ("Urgent: refer within 2 weeks.", "within_two_weeks"),
    ("This is not routine; the patient must be seen urgently.", "within_two_weeks"),
    ("A non-urgent referral is enough.", "routine"),
    ("within_two_weeks", "within_two_weeks"),
    ("No urgent referral needed; routine referral.", "routine"),
    ("Either routine or urgent referral.", None),
    ("I am not sure.", None),
    ("Refer the patient.", None),
    ("Triage: not seen (no referral), because no AMD biomarkers; a healthy retina does not need to be seen.",
     "not_seen"),
    ("Triage: seen within two weeks (urgent referral for anti-VEGF treatment), because of fluid.",
     "within_two_weeks"),
    ("Triage: routine referral (general attention by a retina specialist), because there is no fluid.", "routine"),
]

BIOMARKER = [
    ("biomarker_srf", "Yes.", "present"),
    ("biomarker_srf", "No", "absent"),
    ("biomarker_srf", "No subretinal fluid is seen.", "absent"),
    ("biomarker_srf", "There is subretinal fluid nasally.", "present"),
    ("biomarker_srf", "No SRF, but IRF is present.", "absent"),
    ("biomarker_irf", "No SRF, but IRF is present.", "present"),
    ("biomarker_irf", "No drusen, PED or intraretinal fluid.", "absent"),
    ("biomarker_irf", "No SRF, IRF present.", "present"),
    ("biomarker_drusen", "Large drusen are visible temporally.", "present"),
    ("biomarker_drusen", "There is a drusenoid PED but no drusen.", "absent"),
    ("biomarker_ped", "There is a drusenoid PED but no drusen.", "present"),
    ("biomarker_double_layer_sign", "A double-layer sign is present.", "present"),
    ("biomarker_double_layer_sign", "The RPE is elevated without a double layer sign.", "absent"),
    ("biomarker_hypertransmission", "cRORA with hypertransmission into the choroid.", "present"),
    ("biomarker_hrf", "Hyperreflective foci are absent.", "absent"),
    ("biomarker_shrm", "The retina is healthy.", "absent"),
    ("biomarker_rpe_atrophy", "Signs of RPE atrophy are not present.", "absent"),
    ("biomarker_rpe_elevation", "Irregular RPE.", "present"),
    ("biomarker_shrm", "Maybe.", None),
]


@pytest.mark.parametrize("text,expected", STAGING)
def test_staging_phrasings(text, expected):
    assert parse_answer(text, TASKS["staging"]) == expected


@pytest.mark.parametrize("text,expected", REFERRAL)
def test_referral_phrasings(text, expected):
    assert parse_answer(text, TASKS["referral"]) == expected


@pytest.mark.parametrize("task,text,expected", BIOMARKER)
def test_biomarker_phrasings(task, text, expected):
    assert parse_answer(text, TASKS[task]) == expected


def test_table_is_large_enough():
    assert len(STAGING) + len(REFERRAL) + len(BIOMARKER) >= 40


def test_mentions_mark_denial():
    mentions = find_mentions("no late dry AMD; intermediate AMD", "staging")
    assert [(m.value, m.negated) for m in mentions] == [("late_dry", True), ("intermediate", False)]


def test_lexicon_rejects_unknown_class(tmp_path):
    import yaml

    from evaluation.parser import LEXICON_FILE

    raw = yaml.safe_load(LEXICON_FILE.read_text())
    raw["stages"]["very_late"] = ["x"]
    bad = tmp_path / "lexicon.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="very_late"):
        load_lexicon(bad)


def test_task_options_follow_config():
    referral = build_tasks("referral", {"question": "q", "option_template": "Triage: {name}",
                                        "options": {"not_seen": "No need to be seen"}})[0]
    assert referral.option_texts == {"not_seen": "No need to be seen", "routine": "Triage: routine referral",
                                     "within_two_weeks": "Triage: seen within two weeks"}
    with pytest.raises(ValueError, match="unknown classes"):
        build_tasks("referral", {"question": "q", "options": {"later": "x"}})
    srf = build_tasks("biomarkers", {"question": "Is there any {biomarker}?"}, ["srf"])[0]
    assert srf.question == "Is there any subretinal fluid?" and srf.label_column == "srf"
