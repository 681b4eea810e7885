"""Question/answer pairs for every curriculum module kind, without an LLM.

Each builder takes an image's annotation row (plain values), a seeded `random.Random` and the
module options, and returns candidate pairs; `build_qa` picks `num_questions` of them. The facts
come from the row and `dataset.clinical`; the wording varies with the seed.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from typing import Any

from curriculum.rules_qa.findings import (
    KNOWLEDGE,
    attributes,
    decisive_findings,
    describe,
    findings_sentence,
    join,
    location_phrase,
    lower_first,
    name,
    neighbour_stages,
    present,
    referral_name,
    stage_name,
    upper_first,
)
from curriculum.mentions import stated_stages, states_referral
from dataset.clinical import BIOMARKERS, stage_group

QA = dict[str, str]
Builder = Callable[[Mapping[str, Any], random.Random, Mapping[str, Any]], list[QA]]


def _qa(question: str, answer: str) -> QA:
    return {"question": question, "answer": answer}


#: `options.presence_answer`: how a presence question is answered (see `_presence`).
PRESENCE_ANSWERS = ("there_is", "yes_no")


def _presence(row: Mapping[str, Any], biomarker: str, rng: random.Random, explain: bool,
              style: str = "there_is") -> QA:
    """One presence question and its answer.

    `there_is` (the default) answers "There is drusen: a few large drusen ..." or "There is no
    drusen.": the deciding word is the finding's own name (as the question writes it) or "no".
    With `yes_no` ("Yes, there is ..." / "No, ...") every finding shares the deciding words "Yes"
    and "No", and the tiny default answered every presence question from one "how abnormal is
    this scan" reading: its present-minus-absent scores correlated 0.98-1.00 across the ten
    biomarkers (docs/experiments.md, "Presence answers name the finding"). Named after the
    question's own words, the finding is also easy to copy from the question, so the answer
    names the finding asked about rather than another one the scan shows.
    """
    finding = name(biomarker)
    question = rng.choice(["Is there any {n} in this scan?", "Can you see {n} on this OCT?",
                           "Does this B-scan show {n}?", "Is {n} present?"]).format(n=finding)
    looks = KNOWLEDGE.biomarkers[biomarker].looks_like
    found = biomarker in present(row)
    if style == "yes_no":
        answer = (rng.choice(["Yes, there is {d}.", "Yes: {d}."]).format(d=describe(row, biomarker, rng)) if found
                  else rng.choice(["No, there is no {n}.", "No, {n} is not seen."]).format(n=finding))
    elif found:
        details = describe(row, biomarker, rng)
        answer = f"There is {details}." if details.startswith(finding) else f"There is {finding}: {details}."
    else:
        answer = f"There is no {finding}."
    if explain:
        answer += f" It appears as {looks}." if found else f" It would appear as {looks}."
    return _qa(question, answer)


_ATTRIBUTE_QUESTIONS = {
    "size": ["What size is the {n}?", "How large is the {n}?"],
    "count": ["How many {n} lesions are there?", "Is there one, a few or many {n} lesions?"],
    "location": ["Where is the {n} located?", "In which part of the scan is the {n}?"],
    "type": ["What type of {n} is it?", "Which type of {n} is seen?"],
    "volume": ["How much {n} is there?", "Is the {n} volume small, moderate or large?"],
    "amount": ["How much {n} is there?"],
    "severity": ["How severe is the {n}?"],
    "extent": ["How extensive is the {n}?"],
    "state": ["Is the RPE degenerated or atrophic?"],
    "confluent": ["Are the {n} confluent?"],
    "kind": ["What kind of other pathology is seen?"],
}


def _attribute_qas(row: Mapping[str, Any], biomarker: str, rng: random.Random) -> list[QA]:
    qas = []
    for attribute, value in attributes(row, biomarker).items():
        question = rng.choice(_ATTRIBUTE_QUESTIONS.get(attribute, ["What is the {a} of the {n}?"]))
        question = question.format(n=name(biomarker), a=attribute)
        if attribute == "location":
            answer = f"It lies {location_phrase(value, rng)}."
        elif attribute == "confluent":
            answer = "Yes, they are confluent." if value.lower() == "true" else "No, they are separate."
        else:
            answer = rng.choice(["It is {v}.", "{V}.", "The {a} is {v}."]).format(
                v=value, V=upper_first(value), a=attribute)
        qas.append(_qa(question, answer))
    return qas


def _presence_questions(row, rng, count: int, explain: bool, options: Mapping[str, Any] | None = None) -> list[QA]:
    """Presence questions about `count` biomarkers drawn without looking at the labels.

    The draw must not depend on what the scan shows: asking about present findings more often
    (as alternating present and absent ones did) teaches a model that "Is there X?" is usually
    answered "yes", far above X's prevalence, and a model that reads the image weakly then falls
    back on that prior (below the majority class on seven of ten biomarkers). Drawn uniformly,
    the share of "yes" answers per biomarker is its prevalence in the training split.

    `options.presence_balance` (0 to 1, rules backend) then thins the "no" answers of findings
    rarer than one in two, per biomarker by its prevalence in the module's table
    (`options.prevalence`, filled in by the generator): an absent finding of prevalence p is kept
    with probability (p / (1 - p)) ** balance, so 1 answers "yes" and "no" equally often for every
    biomarker and 0 keeps the prevalence. A model that reads the finding from the scan then says
    "yes" where it sees it instead of falling back on "no", the answer to ~80% of these questions.
    `options.presence_answer` words the answers (`there_is` or `yes_no`, see `_presence`).
    """
    drawn = rng.sample(BIOMARKERS, min(count, len(BIOMARKERS)))
    balance = float((options or {}).get("presence_balance", 0) or 0)
    if not 0 <= balance <= 1:
        raise ValueError(f"options.presence_balance must be between 0 and 1, got {balance}")
    if balance:
        found, prevalence = set(present(row)), (options or {}).get("prevalence") or {}
        drawn = [b for b in drawn if b in found or rng.random() < _keep_absent(prevalence.get(b), balance)]
    style = str((options or {}).get("presence_answer", "there_is"))
    if style not in PRESENCE_ANSWERS:
        raise ValueError(f"options.presence_answer must be one of {', '.join(PRESENCE_ANSWERS)}, got {style!r}")
    return [_presence(row, b, rng, explain, style) for b in drawn]


def _keep_absent(prevalence: float | None, balance: float) -> float:
    """Probability of asking about an absent finding of this prevalence (see `_presence_questions`)."""
    if prevalence is None or not 0 < prevalence < 0.5:
        return 1.0
    return (prevalence / (1 - prevalence)) ** balance


def _presence_count(options: Mapping[str, Any], default: int) -> int:
    """`options.presence_questions`: a number, or `all` for every biomarker."""
    count = options.get("presence_questions", default)
    return len(BIOMARKERS) if count == "all" else int(count)


def _tabular(row, rng, options) -> list[QA]:
    # The image-graded variables first (`build_qa` keeps the first pairs): the stage, its clinic
    # group, the tagged findings and label-blind presence questions are what part 1 must teach
    # the model to read from the scan (the reference's part 1 covers stage and biomarker tags).
    # Age, sex, acuity and quality follow; the image shows them weakly or not at all.
    group = stage_group(str(row["stage"]))
    group_text = "healthy" if group == "healthy" else group.replace("_", " ") + " AMD"
    found = [name(b) for b in present(row)]
    qas = [*_stage_answers(row, rng, _stage_question_count(row, options)),
           _qa(rng.choice(["Which stage group does this scan belong to?", "How would a clinic record "
                           "the disease group of this eye?"]), f"{upper_first(group_text)}."),
           _qa(rng.choice(["Which biomarkers are present?", "List the findings tagged for this scan."]),
               f"{upper_first(join(found))}." if found else "No biomarkers are tagged.")]
    qas += _presence_questions(row, rng, _presence_count(options, 2), explain=False, options=options)
    qas.append(_qa(rng.choice(["Which eye was scanned?", "Is this the left or the right eye?"]),
                   rng.choice(["The {e} eye.", "This is a {e} eye."]).format(e=row["eye"])))
    if _given(row, "age"):
        qas.append(_qa("How old is the patient?", f"The patient is {int(float(row['age']))} years old."))
    if _given(row, "sex"):
        qas.append(_qa("What is the patient's sex?", upper_first(str(row["sex"])) + "."))
    if _given(row, "visual_acuity_logmar"):
        qas.append(_qa(rng.choice(["What is the patient's visual acuity?", "How good is the vision in this eye?"]),
                       f"Visual acuity is {float(row['visual_acuity_logmar']):.2f} logMAR."))
    if _given(row, "quality"):
        qas.append(_qa("What is the scanner quality index of this image?",
                       f"The quality index is {float(row['quality']):.0f} out of 100."))
    return qas


def _biomarkers(row, rng, options) -> list[QA]:
    qas = _presence_questions(row, rng, 6, explain=True, options=options)
    for biomarker in present(row):
        qas += _attribute_qas(row, biomarker, rng)[:1]
    return qas


def _specific(row, rng, options) -> list[QA]:
    # Presence questions first: `build_qa` keeps the first pairs, and the attribute questions'
    # count grows with the findings, so presence questions placed after them were cut more often
    # on diseased scans than on healthy ones.
    qas = _presence_questions(row, rng, _presence_count(options, 3), explain=False, options=options)
    fluid = [b for b in ("srf", "irf") if b in present(row)]
    qas.append(_qa("Is there any retinal fluid?", f"Yes, there is {join([name(b) for b in fluid])}."
                   if fluid else "No, there is no subretinal or intraretinal fluid."))
    return qas + [qa for b in present(row) for qa in _attribute_qas(row, b, rng)]


def _description(row, rng, options) -> list[QA]:
    qas = [_qa(rng.choice(["Describe this OCT scan.", "What do you see in this B-scan?",
                           "Give a short description of this retinal OCT."]), findings_sentence(row, rng))]
    found = present(row)
    qas.append(_qa("What is the most notable finding?", upper_first(describe(row, found[-1], rng)) + "."
                   if found else "Nothing abnormal: the retina looks normal."))
    return qas + _presence_questions(row, rng, 3, explain=False, options=options)


def _stage_reason(row: Mapping[str, Any], stage: str, rng: random.Random) -> str:
    decisive = decisive_findings(row, stage)
    if not decisive:
        return "no AMD biomarkers are present"
    return f"the {join([describe(row, b, rng) for b in decisive])} place it there"


def _staging_intro(row, rng, options) -> list[QA]:
    stage = str(row["stage"])
    guideline = KNOWLEDGE.stage(stage).guideline
    qas = [_qa("According to the staging guidelines, what stage of AMD does this scan show?",
               f"{upper_first(stage_name(stage))}. By the guidelines: {guideline}"),
           _qa("Which findings determine the stage of this scan?",
               f"{upper_first(_stage_reason(row, stage, rng))}.")]
    return qas + _presence_questions(row, rng, 2, explain=True, options=options)


def _why_not(row, stage: str, rng: random.Random) -> str:
    less, more = neighbour_stages(stage)
    parts = []
    if more:
        parts.append(f"It is not {stage_name(more)}, because nothing meets its criteria "
                     f"({lower_first(KNOWLEDGE.stage(more).guideline).rstrip('.')}).")
    if less:
        parts.append(f"It is more advanced than {stage_name(less)}.")
    return " ".join(parts)


def _staging_logic(row, rng, options) -> list[QA]:
    stage = str(row["stage"])
    answer = (f"{findings_sentence(row, rng)} The most advanced stage these findings support is "
              f"{stage_name(stage)}: {_stage_reason(row, stage, rng)}.")
    return [_qa(rng.choice(["List the findings, then give the most advanced AMD stage they support and why.",
                            "Reason step by step: what are the findings and what stage do they imply?"]),
                answer), _qa("Why is this scan staged as it is?", _why_not(row, stage, rng))]


def _referral_text(row, rng) -> str:
    triage, treatment = str(row["referral"]), str(row["referral_treatment"])
    triage_text = ("The patient does not need to be seen" if triage == "not_seen"
                   else f"Triage: {referral_name(triage)}")
    return (f"{triage_text}; for treatment: {referral_name(treatment)}. The guideline: "
            f"{KNOWLEDGE.referral_outcome(triage).guideline}")


def _referral(row, rng, options) -> list[QA]:
    stage = str(row["stage"])
    answer = f"{findings_sentence(row, rng)} Stage: {stage_name(stage)}. {_referral_text(row, rng)}"
    return [_qa(rng.choice(["Should this patient be referred, and how urgently? Explain.",
                            "What referral does this scan warrant? Give the findings and the stage first."]),
                answer), *_with_report_context(row, _qa("How urgent is a referral for this patient?",
                                                        _referral_text(row, rng)), options)]


def _full_report(row, stage: str, rng) -> str:
    return (f"{findings_sentence(row, rng, absences=3)} Stage: {stage_name(stage)}, since "
            f"{_stage_reason(row, stage, rng)}. {_why_not(row, stage, rng)} {_referral_text(row, rng)}")


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _with_conclusion(report: str, row) -> str:
    """The report's findings, then one fixed conclusion from the annotation: "Stage: X. Referral: Y."

    Sentences stating a stage or a referral, wherever they stood and however worded, give way to
    the conclusion, so every report the model learns ends the same way.
    """
    findings = [sentence for sentence in _SENTENCE_END.split(report)
                if not stated_stages(sentence) and not states_referral(sentence)]
    return " ".join([*findings, f"Stage: {stage_name(str(row['stage']))}.",
                     f"Referral: {referral_name(str(row['referral']))}."])


def _report_writing(row, rng, options) -> list[QA]:
    report = str(row.get("report") or "").strip() or findings_sentence(row, rng, absences=3)
    # A report the model learns to write should end in what a reader (and the parser) takes from
    # it: the annotation knows the stage, and the triage, even where the specialist left them out.
    if options.get("conclusion", False):
        report = _with_conclusion(report, row)
    elif options.get("state_stage", True) and not stated_stages(report):
        report = f"{report} Stage: {stage_name(str(row['stage']))}."
    if options.get("state_referral", False) and not states_referral(report):
        report = f"{report} Referral: {referral_name(str(row['referral']))}."
    qas = [_qa(rng.choice(["Write a report for this OCT scan.", "Write a clinical report of this B-scan."]),
               report)]
    qas.append(_qa("Summarise the key findings in one sentence.", findings_sentence(row, rng, absences=1)))
    return qas


def _full_reports(row, rng, options) -> list[QA]:
    stage = str(row["stage"])
    return [_qa("Write a full report of this scan: the findings, the stage, the referral, and why the "
                "stage is neither more nor less advanced.", _full_report(row, stage, rng))]


def _stage_answer(row: Mapping[str, Any], rng: random.Random, guidelines: bool = False) -> QA:
    """The stage question in the wording closed-ended evaluation asks, answered with the stage."""
    if guidelines:
        question = ("Stage the AMD in this scan using these guidelines:\n"
                    f"{KNOWLEDGE.staging_guidelines()}\nWhich stage is it?")
    else:
        question = rng.choice(["What is the AMD stage of this scan?", "Which stage of AMD is shown?"])
    return _qa(question, f"{upper_first(stage_name(str(row['stage'])))}.")


# Further wordings of the stage question, for modules that ask it more than once per scan.
_MORE_STAGE_QUESTIONS = ["How would you stage the AMD in this B-scan?", "What AMD stage does this OCT show?",
                         "Which AMD stage does this retina have?", "Stage the AMD in this scan."]


def _stage_answers(row: Mapping[str, Any], rng: random.Random, count: int) -> list[QA]:
    """The stage question `count` times in distinct wordings (`options.stage_questions`).

    One is the usual `_stage_answer` (the same draws, so a store written with one is unchanged);
    more start with the two wordings evaluation and the other modules use, then further ones.
    Asking it more often gives the stage, one answer among ~20 per scan, a larger share of a
    module's training draws without repeating a question (repeats are rejected as duplicates).
    """
    if not 1 <= count <= 2 + len(_MORE_STAGE_QUESTIONS):
        raise ValueError(f"options.stage_questions must be between 1 and {2 + len(_MORE_STAGE_QUESTIONS)}, got {count}")
    if count == 1:
        return [_stage_answer(row, rng)]
    answer = f"{upper_first(stage_name(str(row['stage'])))}."
    questions = ["What is the AMD stage of this scan?", "Which stage of AMD is shown?"]
    questions += rng.sample(_MORE_STAGE_QUESTIONS, count - 2)
    return [_qa(question, answer) for question in questions]


def _stage_question_count(row: Mapping[str, Any], options: Mapping[str, Any]) -> int:
    """`options.stage_questions`, raised for rarer stages by `options.stage_balance` (0 to 1):
    times (largest stage share / this stage's share) ** balance, rounded, at most the wordings
    there are; shares from `options.stage_shares` (the generator fills them in from the table)."""
    count = int(options.get("stage_questions", 1))
    balance, shares = float(options.get("stage_balance") or 0), options.get("stage_shares") or {}
    if not 0 <= balance <= 1:
        raise ValueError(f"options.stage_balance must be between 0 and 1, got {balance}")
    share = shares.get(str(row["stage"]))
    if not balance or not share:
        return count
    return min(2 + len(_MORE_STAGE_QUESTIONS), round(count * (max(shares.values()) / share) ** balance))


def _with_report_context(row, qa: QA, options) -> list[QA]:
    """`qa` and, with `options.report_context` (a template with `{report}` and `{question}`, the
    evaluation's two-step template), the same question asked with the scan's report as context:
    the second step of the reference's protocol, where the answer is read from a report."""
    template, report = options.get("report_context"), str(row.get("report") or "").strip()
    if not template or not report:
        return [qa]
    return [qa, _qa(str(template).format(report=report, question=qa["question"]), qa["answer"])]


def _staging_accuracy(row, rng, options) -> list[QA]:
    return _with_report_context(row, _stage_answer(row, rng, bool(options.get("guidelines"))), options)


def _demo(row, rng, options) -> list[QA]:
    return _description(row, rng, options)[:2] + _specific(row, rng, options)[:2] + _staging_accuracy(row, rng, {})


BUILDERS: dict[str, Builder] = {
    "tabular": _tabular, "biomarkers": _biomarkers, "specific": _specific, "description": _description,
    "staging_intro": _staging_intro, "staging_logic": _staging_logic, "referral": _referral,
    "report_writing": _report_writing, "full_report": _full_reports, "staging_accuracy": _staging_accuracy,
    "demo": _demo,
}


def _given(row: Mapping[str, Any], key: str) -> bool:
    value = row.get(key)
    return value is not None and value == value and str(value).strip() != ""


def build_qa(kind: str, row: Mapping[str, Any], num_questions: int, seed: int,
             options: Mapping[str, Any] | None = None) -> list[QA]:
    """Up to `num_questions` pairs of module kind `kind` about one image.

    Args:
        kind: one of `BUILDERS`.
        row: the image's annotation row (stage and referral columns filled).
        num_questions: the most pairs to return.
        seed: wording seed (the same seed gives the same pairs).
        options: module options, e.g. `{"guidelines": True}` for staging accuracy.

    Raises:
        KeyError: unknown kind.
    """
    if kind not in BUILDERS:
        raise KeyError(f"no rules builder for module kind {kind!r}; known: {', '.join(BUILDERS)}")
    rng = random.Random(seed)
    candidates = BUILDERS[kind](row, rng, options or {})
    return candidates[:num_questions]
