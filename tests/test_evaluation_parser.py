"""The answer parser against a table of tricky phrasings (negation, order, hedges, synonyms)."""

import pytest

from evaluation.lexicon import load_lexicon
from evaluation.parser import find_mentions, parse_answer
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
    # The phantom's report endings (dataset/phantom/reports.py REFERRAL_SENTENCES).
    ("No fluid is seen. Stage: healthy. Recommendation: not seen.", "not_seen"),
    ("Drusen are present. Suggested management: not seen.", "not_seen"),
    ("Fluid is not seen. Recommendation: routine referral.", "routine"),
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

    from evaluation.lexicon import LEXICON_FILE

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


# --- Classes of phrasing (issue 14, item 4; issue 13: the stated stage). Each class is tested over
# many surface forms, so the parser generalises rather than matching the listed sentences.

# A finding, a separator, a value: "SHRM: absent", "Drusen - none", "SRF = 0".
FINDING_NAMES = [("biomarker_shrm", "SHRM"), ("biomarker_srf", "Subretinal fluid"), ("biomarker_srf", "SRF"),
                 ("biomarker_drusen", "Drusen"), ("biomarker_irf", "Intraretinal fluid"), ("biomarker_ped", "PED"),
                 ("biomarker_hrf", "Hyperreflective foci"), ("biomarker_double_layer_sign", "Double-layer sign")]
SEPARATORS = [": ", " - ", " = ", ":\t", " : "]
NEGATIVE_VALUES = ["absent", "none", "None seen", "not seen", "not present", "negative", "no", "nil", "not detected",
                   "Absent.", "none.", "0", "-", "not identified", "no evidence", "NOT SEEN"]
POSITIVE_VALUES = ["present", "yes", "seen", "small volume nasally", "large, foveal", "Present.", "1 focus temporally",
                   "many"]
ATTRIBUTE_VALUE = (
    [(task, f"{name}{sep}{value}", "absent") for task, name in FINDING_NAMES for sep in SEPARATORS[:2]
     for value in NEGATIVE_VALUES]
    + [(task, f"{name}{sep}{value}", "absent") for task, name in FINDING_NAMES[:3] for sep in SEPARATORS[2:]
       for value in NEGATIVE_VALUES[:6]]
    + [(task, f"{name}{sep}{value}", "present") for task, name in FINDING_NAMES for sep in SEPARATORS[:2]
       for value in POSITIVE_VALUES])

# Several findings in one structured answer or report: each is read on its own.
STRUCTURED = [
    ("Subretinal fluid: not seen. Intraretinal fluid: present.", {"srf": "absent", "irf": "present"}),
    ("Drusen: large, nasal\nSHRM: absent\nSRF: none\nIRF: small cysts", {"drusen": "present", "shrm": "absent",
                                                                          "srf": "absent", "irf": "present"}),
    ("Drusen - none; PED - drusenoid; SRF - no", {"drusen": "absent", "ped": "present", "srf": "absent"}),
    ("Absent: SHRM, subretinal fluid, intraretinal fluid. Present: drusen.",
     {"shrm": "absent", "srf": "absent", "irf": "absent", "drusen": "present"}),
    ("Not seen: drusen and hyperreflective foci. Seen: SHRM.", {"drusen": "absent", "hrf": "absent", "shrm": "present"}),
    ("Negative for: SRF, IRF\nPositive for: drusen", {"srf": "absent", "irf": "absent", "drusen": "present"}),
    ("Pertinent negatives: subretinal fluid, SHRM.", {"srf": "absent", "shrm": "absent"}),
    ("SRF and IRF are both absent; drusen are present.", {"srf": "absent", "irf": "absent", "drusen": "present"}),
    ("Subretinal fluid and SHRM are not seen, but drusen are.", {"srf": "absent", "shrm": "absent"}),
    ("No fluid.", {"srf": "absent", "irf": "absent"}),
    ("The macula is dry, without any fluid.", {"srf": "absent", "irf": "absent"}),
    ("Fluid: none. Drusen: many, confluent.", {"srf": "absent", "irf": "absent", "drusen": "present"}),
    ("There is none.", {"srf": "absent"}),
    ("Healthy: no. SRF: yes.", {"srf": "present"}),
]
STRUCTURED_CASES = [(f"biomarker_{b}", text, value) for text, values in STRUCTURED for b, value in values.items()]

# Time frames, negated or not, and the reference's referral wording.
REFERRAL_CLASSES = [
    ("does not need to be seen within two weeks; a routine referral is appropriate", "routine"),
    ("The patient does not need to be seen within 2 weeks, so a routine referral is appropriate.", "routine"),
    ("Need not be seen urgently; routine referral.", "routine"),
    ("Doesn't have to be seen within two weeks - refer routinely.", "routine"),
    ("No need to be seen in the next two weeks; routine review.", "routine"),
    ("Not within two weeks: this is a routine referral.", "routine"),
    ("An urgent referral is not needed; a routine referral is appropriate.", "routine"),
    ("Urgent referral is not required. Routine.", "routine"),
    ("must be seen within the next two weeks", "within_two_weeks"),
    ("The patient must be seen within the next two weeks.", "within_two_weeks"),
    ("Should be seen within the next 2 weeks because of fluid.", "within_two_weeks"),
    ("Needs to be seen in the next two weeks.", "within_two_weeks"),
    ("Seen within 14 days.", "within_two_weeks"),
    ("Refer to be seen in 2/52.", "within_two_weeks"),
    ("Within a fortnight.", "within_two_weeks"),
    ("Refer as soon as possible for anti-VEGF treatment.", "within_two_weeks"),
    ("Urgent referral is needed, not a routine one.", "within_two_weeks"),
    ("A routine referral is appropriate.", "routine"),
    ("Refer routinely to the medical retina clinic.", "routine"),
    ("Routine referral (general attention by a retina specialist).", "routine"),
    ("Referral: routine", "routine"),
    ("Triage outcome: seen within two weeks", "within_two_weeks"),
    ("Triage: not seen", "not_seen"),
    ("The patient does not need to be seen.", "not_seen"),
    ("No referral is required; discharge.", "not_seen"),
    ("No further action.", "not_seen"),
    ("The patient can be discharged; no follow-up.", "not_seen"),
    ("Stage: late wet AMD (active). Triage: routine referral.", "routine"),
    ("Within two weeks or routine.", None),
]

# Late wet AMD with its activity as a qualifier after a comma, bracket or dash, or elsewhere.
WET_ACTIVITY = [
    ("late wet AMD, currently inactive", "late_wet_inactive"),
    ("Late wet AMD, currently active", "late_wet_active"),
    ("Late wet AMD (currently inactive).", "late_wet_inactive"),
    ("late wet AMD - inactive", "late_wet_inactive"),
    ("Wet AMD (inactive)", "late_wet_inactive"),
    ("Neovascular AMD, clinically inactive.", "late_wet_inactive"),
    ("Late wet AMD, which is active.", "late_wet_active"),
    ("Late wet AMD, but currently inactive.", "late_wet_inactive"),
    ("Late wet AMD, not active.", "late_wet_inactive"),
    ("Late wet AMD, no longer active.", "late_wet_inactive"),
    ("late-stage wet AMD (active)", "late_wet_active"),
    ("Late wet AMD, quiescent.", "late_wet_inactive"),
    ("Inactive CNV.", "late_wet_inactive"),
    ("Late wet AMD without signs of activity.", "late_wet_inactive"),
    ("Late wet AMD with no fluid.", "late_wet_inactive"),
    ("Late wet AMD. No fluid is present.", "late_wet_inactive"),
    ("Late wet AMD; subretinal fluid is present.", "late_wet_active"),
    ("Stage: late wet AMD. The lesion is currently inactive.", "late_wet_inactive"),
    ("The stage is late wet AMD, at present active.", "late_wet_active"),
    ("Late wet AMD.", None),
]

# A stated stage ("Stage: X", "The stage is X", "consistent with X") wins over stages named in
# negations, comparisons or other sections of a report (the reports of issue 13).
STATED_STAGE = [
    ("Stage: intermediate AMD, since the a few hyperreflective material ... place it there. It is not late wet AMD "
     "(inactive), because nothing meets its criteria. Triage: Any sign of late wet AMD (inactive). It is more "
     "advanced than late wet AMD (active).", "intermediate"),
    ("Stage: early AMD. It is not late wet AMD (inactive).", "early"),
    ("Stage: intermediate AMD. It is more advanced than early AMD and less advanced than late dry AMD.",
     "intermediate"),
    ("The stage is late dry AMD. Late wet AMD (active) would need fluid.", "late_dry"),
    ("The findings are consistent with intermediate AMD; late wet AMD (inactive) is ruled out.", "intermediate"),
    ("Drusen and SHRM. Triage: any sign of late wet AMD (inactive) means a routine referral. Stage: intermediate AMD.",
     "intermediate"),
    ("AMD stage: healthy. Early AMD would require drusen.", "healthy"),
    ("I would stage this as late wet AMD (inactive), as opposed to late wet AMD (active).", "late_wet_inactive"),
    ("Staged as early AMD rather than intermediate AMD.", "early"),
    ("Diagnosis: late dry AMD, unlike late wet AMD (inactive) there is no SHRM.", "late_dry"),
    ("There is a risk of progression to late dry AMD. Stage: intermediate AMD.", "intermediate"),
    ("Intermediate AMD is excluded. The stage is early AMD.", "early"),
    ("Healthy: no. Early AMD: no. Intermediate AMD: yes.", "intermediate"),
    ("Grade: late wet AMD (active); compared with late wet AMD (inactive) there is fluid.", "late_wet_active"),
]


@pytest.mark.parametrize("task,text,expected", ATTRIBUTE_VALUE + STRUCTURED_CASES)
def test_attribute_value_phrasings(task, text, expected):
    assert parse_answer(text, TASKS[task]) == expected


@pytest.mark.parametrize("text,expected", REFERRAL_CLASSES)
def test_referral_time_frames_and_reference_wording(text, expected):
    assert parse_answer(text, TASKS["referral"]) == expected


@pytest.mark.parametrize("text,expected", WET_ACTIVITY + STATED_STAGE)
def test_wet_activity_and_stated_stage(text, expected):
    assert parse_answer(text, TASKS["staging"]) == expected


def test_the_class_tables_are_large():
    assert len(ATTRIBUTE_VALUE) >= 300 and len(STRUCTURED_CASES) >= 30
    assert len(REFERRAL_CLASSES) + len(WET_ACTIVITY) + len(STATED_STAGE) >= 60


def test_long_answers_parse_quickly():
    # Regexes with nested repetition can take minutes on a long report (found: 220 s for this one).
    import time

    text = ("Stage: intermediate AMD, since the hyperreflective material and drusen and SHRM and fluid and scars "
            "and more place it there. " * 6 + "SRF and IRF and drusen and PED and SHRM and HRF and fibrosis " * 4)
    start = time.perf_counter()
    for task in TASKS.values():
        parse_answer(text, task)
    assert time.perf_counter() - start < 5


# Answer formats seen from chat models: markdown, numbered sections, questions answered in place,
# post-positioned statements, concessions.
FORMATS = [
    ("staging", "**Stage:** Intermediate AMD", "intermediate"),
    ("staging", "1) Findings: large drusen. 2) Stage: intermediate AMD. 3) Referral: routine.", "intermediate"),
    ("staging", "AMD stage: Intermediate (large drusen >125 um)", "intermediate"),
    ("staging", "Intermediate AMD is the most likely stage, although early AMD cannot be excluded.", "intermediate"),
    ("staging", "Late wet AMD (inactive) is the final diagnosis; late wet AMD (active) was considered.",
     "late_wet_inactive"),
    ("staging", "Based on the findings, I would classify this as early AMD.", "early"),
    ("staging", "Normal.", "healthy"),
    ("staging", "The retina appears normal.", "healthy"),
    ("staging", "Late wet AMD (neovascular), active", "late_wet_active"),
    ("referral", "Referral urgency: Routine", "routine"),
    ("referral", "**Triage:** Seen within two weeks", "within_two_weeks"),
    ("referral", "Seen within two weeks? No. Routine? Yes.", "routine"),
    ("referral", "Referral: not required", "not_seen"),
    ("referral", "Refer routinely within 6 weeks.", "routine"),
    ("referral", "Should be seen within two weeks, not routinely.", "within_two_weeks"),
    ("biomarker_drusen", "Drusen? Yes", "present"),
    ("biomarker_drusen", "drusen (+)", "present"),
    ("biomarker_srf", "No drusen are visible, but SRF is.", "present"),
    ("biomarker_ped", "PED: No PED identified.", "absent"),
    ("biomarker_hrf", "Hyperreflective foci: a few in the outer retina.", "present"),
    ("biomarker_srf", "Is there subretinal fluid? Absent.", "absent"),
    ("biomarker_srf", "Subretinal fluid present: no", "absent"),
    ("biomarker_srf", "Subretinal fluid present: yes", "present"),
]


@pytest.mark.parametrize("task,text,expected", FORMATS)
def test_chat_model_answer_formats(task, text, expected):
    assert parse_answer(text, TASKS[task]) == expected


# Checklist values (Y/N, ticks, booleans) and more denied time frames.
MORE = [
    ("biomarker_shrm", "SHRM: N", "absent"),
    ("biomarker_shrm", "SHRM: Y", "present"),
    ("biomarker_shrm", "SHRM: \u2717", "absent"),
    ("biomarker_shrm", "SHRM: False", "absent"),
    ("biomarker_shrm", "SHRM: not appreciated", "absent"),
    ("biomarker_srf", "Subretinal fluid: no evidence of SRF", "absent"),
    ("referral", "It is not necessary to see the patient within two weeks; routine referral.", "routine"),
    ("referral", "Seeing the patient within two weeks is not required; routine.", "routine"),
    ("referral", "Does not warrant a two-week referral; routine referral.", "routine"),
    ("referral", "The patient should not be seen routinely but within two weeks.", "within_two_weeks"),
    ("staging", "Late wet AMD, in an inactive state.", "late_wet_inactive"),
    ("staging", "Stage: not late wet AMD; intermediate AMD.", "intermediate"),
]


@pytest.mark.parametrize("task,text,expected", MORE)
def test_checklist_values_and_denied_time_frames(task, text, expected):
    assert parse_answer(text, TASKS[task]) == expected


# More surface forms of each class (issue 14, item 4): separators other than a colon (arrows,
# table pipes, markdown emphasis, a dash without spaces), a finding followed by its own abbreviation
# or an aside, a value that denies the finding by name, two findings sharing one head noun.
SEPARATOR_FORMS = ["{f} -> {v}", "{f} => {v}", "{f} \u2192 {v}", "{f} | {v}", "| {f} | {v} |", "**{f}**: {v}",
                   "**{f}:** {v}", "{f}\u2014{v}", "{f} \u2013 {v}", "{f} status: {v}", "{f} presence: {v}",
                   "- {f}: {v}", "\u2022 {f}: {v}", "{f} (any size): {v}"]
NAMED_TWICE = [("biomarker_irf", "Intraretinal fluid (IRF)"), ("biomarker_srf", "Subretinal fluid (SRF)"),
               ("biomarker_shrm", "Subretinal hyperreflective material (SHRM)"),
               ("biomarker_irf", "IRF/cysts"), ("biomarker_ped", "Pigment epithelial detachment (PED)"),
               ("biomarker_hrf", "Hyperreflective foci (HRF)")]
SEPARATOR_CASES = (
    [(task, form.format(f=name, v=value), expected) for task, name in FINDING_NAMES[:4] + NAMED_TWICE
     for form in SEPARATOR_FORMS for value, expected in (("absent", "absent"), ("present", "present"))]
    + [(task, f"{name}: {value}", "absent") for task, name in NAMED_TWICE
       for value in ("absent", "none", "not seen", "\u274c")]
    + [(task, f"No {name.lower()}.", "absent") for task, name in NAMED_TWICE]
    + [(task, f"{name} is present.", "present") for task, name in NAMED_TWICE])
DENIED_BY_NAME = [
    ("biomarker_irf", "IRF: no IRF"), ("biomarker_irf", "IRF: There is no IRF."),
    ("biomarker_irf", "IRF: no cysts"), ("biomarker_drusen", "Drusen: No drusen"),
    ("biomarker_drusen", "Drusen: no definite drusen."),
    ("biomarker_srf", "Subretinal fluid: there is no subretinal fluid"),
    ("biomarker_srf", "SRF: there is none."),
    ("biomarker_shrm", "SHRM: no evidence of SHRM"), ("biomarker_srf", "SRF/IRF: absent"),
    ("biomarker_irf", "SRF and IRF: none"), ("biomarker_srf", "SRF or IRF? No."),
    ("biomarker_srf", "SRF: nope"),
    ("biomarker_shrm", "SHRM cannot be seen."), ("biomarker_shrm", "SHRM could not be identified."),
    ("biomarker_srf", "Subretinal fluid can't be seen."), ("biomarker_srf", "Fluid (SRF/IRF): absent")]
SHARED_HEAD = [(f"biomarker_{b}", text, expected) for b in ("srf", "irf") for text, expected in [
    ("No subretinal or intraretinal fluid.", "absent"),
    ("No sub- or intraretinal fluid.", "absent"),
    ("There is no intraretinal or subretinal fluid.", "absent"),
    ("Without subretinal/intraretinal fluid.", "absent"),
    ("Subretinal and intraretinal fluid: absent", "absent"),
    ("Neither subretinal nor intraretinal fluid.", "absent"),
    ("Sub- and intraretinal fluid are present.", "present"),
    ("Subretinal and intraretinal fluid are seen.", "present")]]
# What the wider separators must not deny: a value that is not negative, an aside after a stage.
STILL_ASSERTED = [
    ("biomarker_srf", "SRF: present, no IRF", "present"),
    ("biomarker_srf", "Drusen and SRF: present", "present"),
    ("biomarker_srf", "No drusen; SRF: present", "present"),
    ("biomarker_srf", "SRF (small): present", "present"),
    ("biomarker_srf", "No drusen, and there is SRF.", "present"),
    ("biomarker_srf", "SRF: no IRF, but SRF is present", "present"),
    ("staging", "Stage: intermediate AMD (no fluid)", "intermediate"),
    ("staging", "Intermediate AMD (no fluid, no SHRM).", "intermediate"),
    ("staging", "Late dry AMD - no fluid.", "late_dry"),
    ("referral", "Referral: routine (no fluid).", "routine"),
    ("referral", "The urgent referral is not required; routine.", "routine"),
    ("referral", "Routine referral is not appropriate; the patient must be seen within two weeks.",
     "within_two_weeks")]
MORE_ATTRIBUTE_CASES = (SEPARATOR_CASES + [(t, x, "absent") for t, x in DENIED_BY_NAME] + SHARED_HEAD
                        + STILL_ASSERTED)


@pytest.mark.parametrize("task,text,expected", MORE_ATTRIBUTE_CASES)
def test_more_separators_aliases_and_shared_heads(task, text, expected):
    assert parse_answer(text, TASKS[task]) == expected


# Referral: a referral denied outright, a denied time frame whose clause ends at "and <verb>", "by a
# specialist" (no time frame), the fortnight in any form; late wet AMD "in remission" or "dry".
MORE_REFERRALS = [
    ("Referral is not required.", "not_seen"), ("A referral is not necessary.", "not_seen"),
    ("Referral is unnecessary.", "not_seen"), ("Any referral would be unnecessary.", "not_seen"),
    ("The patient does not need to be seen by a specialist.", "not_seen"),
    ("The patient does not need to be seen by an ophthalmologist.", "not_seen"),
    ("The patient does not need to be seen by the end of the week; routine referral.", "routine"),
    ("This patient does not require an urgent referral and should be referred routinely.", "routine"),
    ("Does not need to be seen within two weeks and can be referred routinely.", "routine"),
    ("The patient does not need to be referred within two weeks, but should be seen routinely.", "routine"),
    ("The patient need not be seen within the next two weeks; a routine referral will suffice.", "routine"),
    ("Referral within two weeks is not indicated; routine referral.", "routine"),
    ("Not urgent - routine referral.", "routine"),
    ("The patient should be seen in the next fortnight.", "within_two_weeks"),
    ("Refer within a fortnight.", "within_two_weeks"),
    ("Seen within the coming fortnight.", "within_two_weeks"),
    ("Should be seen by a specialist within the next two weeks.", "within_two_weeks"),
    ("The patient must be seen within the next two weeks by a retina specialist.", "within_two_weeks"),
    ("Yes, the patient must be seen within the next two weeks.", "within_two_weeks"),
    ("Not a routine referral: the patient must be seen within the next two weeks.", "within_two_weeks"),
]
WET_QUALIFIERS = [("in remission", "late_wet_inactive"), ("currently dry", "late_wet_inactive"),
                  ("currently inactive", "late_wet_inactive"), ("at present inactive", "late_wet_inactive"),
                  ("apparently inactive", "late_wet_inactive"), ("likely active", "late_wet_active"),
                  ("currently active", "late_wet_active"), ("active", "late_wet_active")]
MORE_WET = [(f"{wet}, {qualifier}", expected) for qualifier, expected in WET_QUALIFIERS
            for wet in ("Late wet AMD", "late wet AMD", "Late neovascular AMD", "Wet AMD", "nAMD")]


@pytest.mark.parametrize("text,expected", MORE_REFERRALS)
def test_more_referral_phrasings(text, expected):
    assert parse_answer(text, TASKS["referral"]) == expected


@pytest.mark.parametrize("text,expected", MORE_WET)
def test_more_wet_activity_qualifiers(text, expected):
    assert parse_answer(text, TASKS["staging"]) == expected


# Stage and referral in a clinic's other words: "unremarkable", "late AMD, dry type", "no active
# fluid", "not necessary to refer".
OTHER_WORDS = [
    ("staging", "The macula is unremarkable.", "healthy"), ("staging", "Unremarkable.", "healthy"),
    ("staging", "The scan appears unremarkable.", "healthy"),
    ("staging", "Late AMD, dry type.", "late_dry"), ("staging", "Late AMD (dry).", "late_dry"),
    ("staging", "Late-stage AMD, dry.", "late_dry"),
    ("staging", "Wet AMD with no active fluid.", "late_wet_inactive"),
    ("staging", "Late wet AMD without residual fluid.", "late_wet_inactive"),
    ("referral", "Not necessary to refer.", "not_seen"),
    ("referral", "It is not needed to be seen.", "not_seen"),
    ("referral", "Not necessary to be seen within two weeks; routine referral.", "routine"),
]


@pytest.mark.parametrize("task,text,expected", OTHER_WORDS)
def test_stage_and_referral_in_other_words(task, text, expected):
    assert parse_answer(text, TASKS[task]) == expected
