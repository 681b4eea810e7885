"""The response parser and the QA validation rules, as tables of tricky cases."""

import json

import pytest

from curriculum.mentions import stated_stages
from curriculum.parsing import ParsedQA, parse_qa_response
from curriculum.validation import Labels, contradicts_labels, question_leaks_answer, rejection_reason

TWO_PAIRS = [("Is there drusen?", "Yes, large drusen."), ("Where is the fluid?", "Under the fovea.")]


@pytest.mark.parametrize("text,expected_format", [
    (json.dumps({"qa": [{"question": q, "answer": a} for q, a in TWO_PAIRS]}), "json"),
    ("```json\n" + json.dumps({"qa": [{"question": q, "answer": a} for q, a in TWO_PAIRS]}) + "\n```", "json"),
    ("Here you go:\n" + json.dumps([{"Question": q, "Answer": a} for q, a in TWO_PAIRS]), "json"),
    ("Q1: Is there drusen?\nA1: Yes, large drusen.\nQ2: Where is the fluid?\nA2: Under the fovea.", "text"),
    ("**Q1:** Is there drusen?\n**A1:** Yes, large drusen.\n\n**Q2:** Where is the fluid?\n**A2:** Under the fovea.",
     "text"),
    ("1. Q: Is there drusen?\n   A: Yes, large drusen.\n2. Q: Where is the fluid?\n   A: Under the fovea.", "text"),
    ("```\nQuestion 1: Is there drusen?\nAnswer 1: Yes, large\ndrusen.\nQuestion 2: Where is the fluid?\n"
     "Answer 2: Under the\n  fovea.\n```", "text"),
    ("- **Question:** Is there drusen?\n  **Answer:** Yes, large drusen.\n- **Question:** Where is the fluid?\n"
     "  **Answer:** Under the fovea.", "text"),
    ("Q: Is there drusen? A: Yes, large drusen.\nQ: Where is the fluid? A: Under the fovea.", "text"),
])
def test_parser_reads_json_and_qa_text(text, expected_format):
    result = parse_qa_response(text)
    assert result.format == expected_format
    assert [(p.question, p.answer) for p in result.pairs] == TWO_PAIRS


def test_truncated_json_keeps_complete_pairs():
    full = json.dumps({"qa": [{"question": q, "answer": a} for q, a in TWO_PAIRS]})
    cut = full[: full.index("Under the") + 5]
    result = parse_qa_response(cut, finish_reason="length")
    assert result.format == "json_salvaged"
    assert [(p.question, p.answer) for p in result.pairs] == TWO_PAIRS[:1]


def test_truncated_text_flags_the_last_pair():
    result = parse_qa_response("Q1: Is there drusen?\nA1: Yes.\nQ2: Where is the fluid?\nA2: Under the", "length")
    assert [p.truncated for p in result.pairs] == [False, True]


@pytest.mark.parametrize("text", ["", "I cannot help with that.", "{not json", "Question without label?"])
def test_unreadable_text_yields_nothing(text):
    assert parse_qa_response(text).pairs == []


@pytest.mark.parametrize("question,answer,leaks", [
    ("What stage is this scan?", "Late dry AMD.", False),
    ("This scan shows late dry AMD. What stage is it?", "Late dry AMD.", True),
    ("Is it early, intermediate or late dry AMD?", "Late dry AMD.", False),
    ("What size are the drusen?", "They are large.", False),
    ("What size are these large drusen?", "Large.", True),
    ("How large are the drusen?", "Large.", False),
    ("Is there subretinal fluid?", "Yes, there is subretinal fluid.", False),
    ("Is there subretinal fluid?", "There is subretinal fluid (small volume) nasally.", False),
    ("Can you see RPE atrophy on this OCT?", "There is RPE atrophy: RPE atrophy.", False),
    ("Is there subretinal fluid?", "There is no subretinal fluid.", False),
    ("Which fluid is there, subretinal fluid?", "Subretinal fluid.", True),
    ("Describe the scan; it has large drusen nasally.", "It has large drusen nasally.", True),
])
def test_leak_detection(question, answer, leaks):
    assert question_leaks_answer(question, answer) is leaks


@pytest.mark.parametrize("answer,labels,contradicts", [
    ("This is intermediate AMD.", Labels(stage="intermediate"), False),
    ("This is late dry AMD.", Labels(stage="intermediate"), True),
    ("Intermediate AMD, not late dry AMD.", Labels(stage="intermediate"), False),
    ("It isn't late wet AMD; it is early AMD.", Labels(stage="early"), False),
    ("More advanced than early AMD: intermediate AMD.", Labels(stage="intermediate"), False),
    ("Late wet AMD.", Labels(stage="late_wet_active"), False),
    ("Late wet AMD (inactive).", Labels(stage="late_wet_active"), True),
    ("Early or intermediate AMD.", Labels(stage="early"), False),
    ("No AMD; the retina is healthy.", Labels(stage="late_dry"), True),
    ("Routine referral.", Labels(referral="within_two_weeks"), True),
    ("Urgent referral for anti-VEGF treatment.", Labels(referral_treatment="urgent_treatment"), False),
    ("No referral for treatment is needed.", Labels(referral_treatment="general_attention"), True),
    ("Subretinal fluid is not seen.", Labels(referral="routine"), False),
    ("Fibrosis often follows treated wet AMD.", Labels(stage="early"), False),
    ("This is late dry AMD.", Labels(), False),
])
def test_contradiction_detection(answer, labels, contradicts):
    assert contradicts_labels(answer, labels) is contradicts


def test_rejection_reasons_and_duplicates():
    labels, seen = Labels(stage="early"), set()
    assert rejection_reason(ParsedQA("Q?", ""), labels, seen) == "empty"
    assert rejection_reason(ParsedQA("Q?", "A", truncated=True), labels, seen) == "truncated"
    assert rejection_reason(ParsedQA("What stage?", "Late dry AMD."), labels, seen) == "contradiction"
    assert rejection_reason(ParsedQA("What stage?", "Early AMD."), labels, seen) is None
    assert rejection_reason(ParsedQA("What  stage?", "Early AMD."), labels, seen) == "duplicate"


@pytest.mark.parametrize("report,stages", [
    ("Large drusen. Intermediate AMD.", {"intermediate"}),
    ("Large drusen, no fluid.", set()),
    ("Active late wet AMD with subretinal fluid.", {"late_wet_active"}),
    ("Not late AMD.", set()),
])
def test_stated_stage(report, stages):
    assert stated_stages(report) == stages
