"""The negation cues in dataset/clinical/negation.yaml, as each reader of free text uses them."""

import re

from curriculum.mentions import stated_stages
from dataset.clinical import load_negation_cues
from evaluation.parser import parse_answer
from evaluation.tasks import build_tasks
from saliency.phrases import build_vocabulary


def test_every_cue_is_text_and_every_pattern_compiles():
    cues = load_negation_cues()
    words = [*cues.mentions.cue_words, *cues.reports.pre_negation_cues, *cues.reports.post_negation_cues,
             *cues.reports.scope_breaks]
    # A bare `no` in YAML reads as False: every cue must stay a non-empty string.
    assert all(isinstance(w, str) and w.strip() for w in words)
    assert "no" in cues.mentions.cue_words and "no" in cues.reports.pre_negation_cues
    for pattern in [cues.mentions.clause_break, *vars(cues.answers).values()]:
        re.compile(pattern)


def test_each_reader_denies_with_its_own_cues():
    assert stated_stages("Intermediate AMD, not late dry AMD.") == {"intermediate"}
    staging = build_tasks("staging", {"question": "What is the AMD stage?"})[0]
    assert parse_answer("No signs of late wet AMD; this is intermediate AMD.", staging) == "intermediate"
    assert [p.negated for p in build_vocabulary().find("No subretinal fluid.")] == [True]


def test_report_cues_can_be_overridden_from_config():
    vocabulary = build_vocabulary(pre_negation_cues=["without"], post_negation_cues=[], scope_breaks=None)
    assert [p.negated for p in vocabulary.find("No subretinal fluid. Drusen without SRF.")] == [False, False, True]
