"""Finding finding-phrases in reports: vocabulary from the clinical knowledge, negation, config."""

import pytest

from dataset.clinical import load_knowledge
from saliency.phrases import build_vocabulary


@pytest.fixture(scope="module")
def vocabulary():
    return build_vocabulary()


@pytest.mark.parametrize("report,expected", [
    ("Large drusen are seen nasally with subretinal fluid temporally.",
     [("drusen", "drusen", False), ("subretinal fluid", "srf", False)]),
    ("No subretinal fluid or intraretinal fluid.",
     [("subretinal fluid", "srf", True), ("intraretinal fluid", "irf", True)]),
    ("Intraretinal fluid is absent; SHRM is present.",
     [("Intraretinal fluid", "irf", True), ("SHRM", "shrm", False)]),
    ("No fluid, but subretinal hyperreflective material temporally.",
     [("subretinal hyperreflective material", "shrm", False)]),
    ("A drusenoid PED with double-layer sign.", [("PED", "ped", False), ("double-layer sign", "double_layer_sign", False)]),
    ("Cysts are not seen. Hyper-reflective foci are scattered.",
     [("Cysts", "irf", True), ("Hyper-reflective foci", "hrf", False)]),
    ("Geographic atrophy with cRORA.", [("Geographic atrophy", "rpe_atrophy", False), ("cRORA", "hypertransmission", False)]),
    ("The PEDs-like shadow and SRFx are artefacts.", []),  # whole words only
    ("No, RPE elevation and subretinal fluid.",  # a yes/no answer, not a negation
     [("RPE elevation", "rpe_elevation", False), ("subretinal fluid", "srf", False)]),
])
def test_finds_phrases_with_biomarker_and_negation(vocabulary, report, expected):
    phrases = vocabulary.find(report)
    assert [(p.text, p.biomarker, p.negated) for p in phrases] == expected
    for p in phrases:
        assert report[p.start:p.end] == p.text


def test_vocabulary_covers_every_biomarker_name_and_synonym():
    knowledge = load_knowledge()
    vocabulary = build_vocabulary()
    for biomarker in knowledge.biomarkers.values():
        for term in [biomarker.name, *biomarker.synonyms]:
            assert vocabulary.terms[term.lower()].biomarker == biomarker.id


def test_longest_term_wins_and_phrases_do_not_overlap(vocabulary):
    phrases = vocabulary.find("subretinal hyperreflective material and subretinal fluid")
    assert [p.biomarker for p in phrases] == ["shrm", "srf"]
    assert phrases[0].end <= phrases[1].start


def test_include_negated_false_drops_absent_findings(vocabulary):
    phrases = vocabulary.find("Drusen present. No subretinal fluid.", include_negated=False)
    assert [(p.index, p.biomarker) for p in phrases] == [(0, "drusen")]


def test_config_narrows_widens_and_excludes():
    vocabulary = build_vocabulary(biomarkers=["srf", "drusen"], extra_synonyms={"srf": ["fluid under the retina"]},
                                  exclude_terms=["SRF"])
    found = vocabulary.find("Fluid under the retina, SRF, drusen and intraretinal fluid.")
    assert [(p.text, p.biomarker) for p in found] == [("Fluid under the retina", "srf"), ("drusen", "drusen")]


def test_unknown_biomarker_and_conflicting_terms_fail_with_the_fix():
    with pytest.raises(ValueError, match="unknown biomarker id.*known"):
        build_vocabulary(biomarkers=["drusn"])
    with pytest.raises(ValueError, match="names both"):
        build_vocabulary(extra_synonyms={"irf": ["subretinal fluid"]})


def test_slugs_are_unique_and_file_safe(vocabulary):
    phrases = vocabulary.find("Drusen; drusen. Double-layer sign!")
    slugs = [p.slug for p in phrases]
    assert len(set(slugs)) == len(slugs)
    assert all(s.replace("_", "").isalnum() for s in slugs)
