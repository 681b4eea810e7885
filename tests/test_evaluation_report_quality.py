"""Reports that state and deny the same finding, or repeat a sentence, are counted."""

import pandas as pd

from evaluation.report_quality import (CONTRADICTORY, REPETITIVE, contradicted_findings, repeated_sentences,
                                       report_quality)


def test_a_finding_stated_and_denied_is_a_contradiction():
    text = "A few small drusen in the foveal region. The retina is dry, with no fluid. No drusen are seen."
    assert contradicted_findings(text) == ["drusen"]
    assert contradicted_findings("Subretinal fluid (small volume) in the foveal region. "
                                 "There is no subretinal fluid.") == ["srf"]


def test_fluid_denied_in_general_contradicts_fluid_stated():
    assert contradicted_findings("Intraretinal fluid nasally. No fluid is seen.") == ["irf"]
    assert contradicted_findings("No subretinal or intraretinal fluid. Large drusen.") == []


def test_consistent_reports_have_no_contradiction():
    for text in ("Large drusen nasally with a drusenoid PED. No subretinal or intraretinal fluid. "
                 "Stage: intermediate AMD.",
                 "There is a long double-layer sign nasally, a shallow irregular RPE elevation. No PED.",
                 "No drusen, PED or fluid. Stage: healthy.", ""):
        assert contradicted_findings(text) == [], text


def test_repeated_sentences_ignore_case_and_spacing():
    assert repeated_sentences("No drusen. No fluid.  no   drusen. No fluid.") == 2
    assert repeated_sentences("No drusen. No fluid is seen.") == 0
    assert repeated_sentences("") == 0


def test_report_quality_shares_per_model():
    records = pd.DataFrame({
        "model": ["a"] * 4 + ["b"] * 2,
        "patient_id": ["p1", "p1", "p2", "p3", "p1", "p2"],
        "report": ["Drusen nasally. No drusen.", "No fluid. No fluid.", "Large drusen.", "No PED.",
                   "No PED.", "SRF centrally. SRF centrally. No SRF."]})
    table = report_quality(records, n_resamples=50, seed=0).set_index(["model", "metric"])
    assert table.loc[("a", CONTRADICTORY), "value"] == 0.25
    assert table.loc[("a", REPETITIVE), "value"] == 0.25
    assert table.loc[("b", CONTRADICTORY), "value"] == 0.5 and table.loc[("b", REPETITIVE), "value"] == 0.5
    assert (table["ci_low"] <= table["value"]).all() and (table["value"] <= table["ci_high"]).all()
    assert set(table["n_images"]) == {4, 2}


def test_the_phantoms_own_reports_never_contradict_themselves():
    from dataset.clinical import load_knowledge
    from dataset.phantom.findings import sample_findings
    from dataset.phantom.records import scan_rngs
    from dataset.phantom.reports import write_report

    stages = [s.id for s in load_knowledge().stages]
    for index in range(300):
        findings_rng, _, report_rng = scan_rngs(0, index)
        stage = stages[index % len(stages)]
        findings = sample_findings(stage, findings_rng)
        report = write_report(findings, stage, "routine", "no_referral", report_rng)
        assert contradicted_findings(report) == [], report
        assert repeated_sentences(report) == 0, report
