"""The offline rules backend end to end: parts 1 and 2, the demo, resume, splits and skips."""

import json

import pandas as pd
import pytest
from support.configs import compose_config
from support.tables import CASES, write_curriculum_table

from curriculum.api import generate_curriculum
from curriculum.generator import GenerationError
from curriculum.mentions import stated_stages
from curriculum.modules import CurriculumConfigError, load_modules
from curriculum.parsing import ParsedQA
from curriculum.rules_qa import BUILDERS, build_qa
from curriculum.validation import Labels, rejection_reason
from dataset.annotations import load_annotations
from dataset.qa_records import read_records
from evaluation.parser import parse_answer
from evaluation.tasks import build_tasks


@pytest.fixture()
def table(tmp_path):
    return write_curriculum_table(tmp_path / "data", copies=2, splits=("train", "train", "validation", "test"))


def _run(config_name, tmp_path, table, *overrides):
    cfg = compose_config(config_name, tmp_path, [f"generation.annotations_file={table}",
                                                 "model/language_model=rules", *overrides])
    return generate_curriculum(cfg), cfg


def test_rules_answers_pass_validation_for_every_kind(tmp_path, table):
    rows = load_annotations(table, check_images=False).to_dict("records")
    for kind in BUILDERS:
        for row in rows:
            pairs = build_qa(kind, row, 20, seed=3, options={"guidelines": True})
            assert pairs, (kind, row["stage"])
            seen = set()
            reasons = [rejection_reason(ParsedQA(p["question"], p["answer"]), Labels.from_row(row), seen)
                       for p in pairs]
            assert reasons == [None] * len(pairs), (kind, row["stage"], pairs)


def test_part1_asks_the_stage_and_every_biomarker_first():
    """Part 1 teaches what the scan shows before what the table alone knows: the stage in the
    closed-ended question's words, the group, the findings, then each biomarker's presence."""
    from dataset.clinical import BIOMARKERS

    row = {"image_id": "x", "eye": "right", "stage": "late_dry", "referral": "routine", "age": 80, "sex": "female",
           "referral_treatment": "general_attention", "rpe_atrophy": True, "hypertransmission": True}
    pairs = build_qa("tabular", row, 20, seed=4, options={"presence_questions": "all"})
    assert pairs[0]["question"] in ("What is the AMD stage of this scan?", "Which stage of AMD is shown?")
    assert pairs[0]["answer"] == "Late dry AMD."
    presence = pairs[3:3 + len(BIOMARKERS)]
    named = sorted(p["answer"] for p in presence if not p["answer"].startswith("There is no "))
    assert [a.split(":")[0].rstrip(".") for a in named] == ["There is RPE atrophy", "There is hypertransmission"]
    assert sum(p["answer"].startswith("There is no ") for p in presence) == len(BIOMARKERS) - 2
    assert pairs[-1]["question"] == "What is the patient's sex?"


def test_part1_asks_the_stage_in_several_wordings_when_told():
    """`options.stage_questions` repeats the stage question in distinct wordings (a repeat would be
    rejected as a duplicate), one of them evaluation's; one keeps the store as it was."""
    row = {"image_id": "x", "eye": "right", "stage": "late_wet_active", "referral": "urgent",
           "referral_treatment": "anti_vegf", "srf": True}
    options = {"presence_questions": "all"}
    assert build_qa("tabular", row, 20, seed=4, options={**options, "stage_questions": 1}) == \
        build_qa("tabular", row, 20, seed=4, options=options)
    pairs = build_qa("tabular", row, 40, seed=4, options={**options, "stage_questions": 4})
    stage = [p for p in pairs if p["answer"] == "Late wet AMD (active)."]
    assert len(stage) == 4 and len({p["question"] for p in stage}) == 4
    assert "What is the AMD stage of this scan?" in {p["question"] for p in stage}
    assert pairs[:4] == stage
    seen = set()
    assert all(rejection_reason(ParsedQA(p["question"], p["answer"]), Labels.from_row(row), seen) is None
               for p in pairs)
    with pytest.raises(ValueError, match="stage_questions"):
        build_qa("tabular", row, 20, seed=4, options={"stage_questions": 9})


@pytest.mark.parametrize("stage,balance,expected", [("healthy", 1.0, 4), ("late_wet_inactive", 1.0, 6),
                                                    ("late_wet_inactive", 0.5, 5), ("late_wet_inactive", 0.0, 4)])
def test_stage_balance_asks_rarer_stages_more_often(stage, balance, expected):
    """`options.stage_balance` scales a stage's wordings by (largest share / its share) ** balance,
    rounded and capped at the six wordings there are: 4 x 1.6 = 6.4 -> 6 at 1, 4 x 1.26 -> 5 at 0.5."""
    shares = {"healthy": 0.4, "late_wet_inactive": 0.25}
    row = {"image_id": "x", "eye": "right", "stage": stage, "referral": "general", "referral_treatment": "none"}
    options = {"stage_questions": 4, "stage_balance": balance, "stage_shares": shares}
    answer = {"healthy": "Healthy.", "late_wet_inactive": "Late wet AMD (inactive)."}[stage]
    pairs = build_qa("tabular", row, 40, seed=4, options=options)
    assert sum(p["answer"] == answer and "group" not in p["question"] for p in pairs) == expected
    with pytest.raises(ValueError, match="stage_balance"):
        build_qa("tabular", row, 40, seed=4, options={**options, "stage_balance": 2})


def test_reports_state_a_stage_and_answers_can_be_read_from_them():
    row = {"image_id": "x", "eye": "left", "stage": "early", "referral": "routine", "referral_treatment": "no_referral",
           "drusen": True, "drusen_size": "small", "report": "A few small drusen nasally. No fluid."}
    report = build_qa("report_writing", row, 1, seed=0)[0]["answer"]
    assert report == "A few small drusen nasally. No fluid. Stage: early AMD."
    template = "Here is a report about this scan:\n{report}\n\n{question}"
    plain, in_context = build_qa("staging_accuracy", {**row, "report": report}, 2, seed=0,
                                 options={"report_context": template})
    assert in_context["question"] == template.format(report=report, question=plain["question"])
    assert in_context["answer"] == plain["answer"] == "Early AMD."
    # The quoted report states the answer; only what is asked is checked for a leak.
    assert rejection_reason(ParsedQA(in_context["question"], in_context["answer"]), Labels.from_row(row), set()) is None
    assert rejection_reason(ParsedQA("Is this early AMD?", "Early AMD."), Labels.from_row(row), set()) == "leak"


def test_reports_state_the_referral_when_asked_and_only_when_missing():
    row = {"image_id": "x", "eye": "left", "stage": "early", "referral": "routine", "referral_treatment": "no_referral",
           "drusen": True, "drusen_size": "small", "report": "A few small drusen nasally. No fluid."}
    report = build_qa("report_writing", row, 1, seed=0, options={"state_referral": True})[0]["answer"]
    assert report == "A few small drusen nasally. No fluid. Stage: early AMD. Referral: routine referral."
    for stated in ("Recommendation: not seen.", "Referral: urgent referral for anti-VEGF treatment.",
                   "Stage: early AMD. Routine referral."):
        given = {**row, "report": f"A few small drusen nasally. {stated}"}
        answer = build_qa("report_writing", given, 1, seed=0, options={"state_referral": True})[0]["answer"]
        assert stated in answer and "Referral: routine referral." not in answer


@pytest.mark.parametrize(("text", "stages"), [
    ("Stage: healthy.", {"healthy"}), ("Diagnosis:  healthy.", {"healthy"}),
    ("Impression: healthy retina.", {"healthy"}), ("Overall, the scan is healthy.", {"healthy"}),
    ("The retina appears healthy.", {"healthy"}), ("Stage: early AMD.", {"early"}),
    ("The RPE is healthy.", set()), ("Stage: not healthy.", set()), ("Healthy photoreceptors above the drusen.", set()),
    ("Stage: intermediate AMD, not late dry AMD.", {"intermediate"}),
])
def test_stated_stages_read_healthy_reports(text, stages):
    assert stated_stages(text) == stages


def test_report_conclusion_replaces_stated_stage_and_referral_wherever_they_stood():
    row = {"image_id": "x", "eye": "left", "stage": "intermediate", "referral": "routine",
           "referral_treatment": "no_referral", "drusen": True, "drusen_size": "large"}
    for report in ("Impression: intermediate AMD. Large drusen nasally. No fluid. Recommendation: routine.",
                   "Large drusen nasally. No fluid. These findings indicate intermediate AMD.",
                   "Large drusen nasally. No fluid."):
        answer = build_qa("report_writing", {**row, "report": report}, 1, seed=0,
                          options={"conclusion": True})[0]["answer"]
        assert answer == "Large drusen nasally. No fluid. Stage: intermediate AMD. Referral: routine referral."
    healthy = {**row, "stage": "healthy", "referral": "not_seen", "drusen": False,
               "report": "Overall, the scan is healthy. Normal retinal layers. Referral: not seen."}
    answer = build_qa("report_writing", healthy, 1, seed=0, options={"conclusion": True})[0]["answer"]
    assert answer == "Normal retinal layers. Stage: healthy. Referral: not seen."
    staging, referral = (build_tasks(group, {"question": "?"})[0] for group in ("staging", "referral"))
    assert (parse_answer(answer, staging), parse_answer(answer, referral)) == ("healthy", "not_seen")


def test_rules_wording_is_seeded():
    row = {"image_id": "x", "eye": "left", "stage": "early", "referral": "routine",
           "referral_treatment": "no_referral", "drusen": True, "drusen_size": "small"}
    assert build_qa("biomarkers", row, 8, seed=1) == build_qa("biomarkers", row, 8, seed=1)
    variants = {json.dumps(build_qa("biomarkers", row, 8, seed=s)) for s in range(10)}
    assert len(variants) > 1


@pytest.mark.parametrize("kind", ["tabular", "biomarkers", "specific", "description", "staging_intro"])
def test_presence_answers_decide_with_the_finding_or_no(kind):
    """`there_is` (the default): "There is drusen: ..." / "There is no drusen.", so the deciding
    word is the finding's own name, as the question writes it, or "no"; `yes_no` opens every
    answer with "Yes" or "No". Either way the answer is label-true."""
    from curriculum.rules_qa.findings import name
    from dataset.clinical import BIOMARKERS

    row = {"image_id": "x", "eye": "left", "stage": "late_wet_active", "referral": "urgent",
           "referral_treatment": "anti_vegf", "drusen": True, "drusen_size": "large", "srf": True}
    for style in ("there_is", "yes_no"):
        options = {"presence_questions": "all", "presence_answer": style}
        presence = [(b, qa["answer"]) for seed in range(20)
                    for qa in build_qa(kind, row, 30, seed=seed, options=options)
                    for b in BIOMARKERS if qa["question"] in {
                        t.format(n=name(b)) for t in ("Is there any {n} in this scan?", "Can you see {n} on this OCT?",
                                                      "Does this B-scan show {n}?", "Is {n} present?")}]
        assert {b for b, _ in presence} >= {"drusen", "srf"}, kind
        for biomarker, answer in presence:
            found = biomarker in ("drusen", "srf")
            if style == "yes_no":
                assert answer.startswith("Yes" if found else "No,"), answer
            else:
                assert answer.startswith(f"There is {name(biomarker)}" if found else f"There is no {name(biomarker)}."), answer
    with pytest.raises(ValueError, match="presence_answer"):
        build_qa("specific", row, 20, seed=0, options={"presence_answer": "maybe"})


@pytest.mark.parametrize(("kind", "num_questions"), [("specific", 6), ("biomarkers", 8), ("description", 5),
                                                     ("tabular", 8)])
def test_presence_answers_match_prevalence(kind, num_questions):
    # One scan in five has drusen (with subretinal fluid), the rest are healthy: "Is there drusen?"
    # must be answered "yes" about a fifth of the time. Choosing the questions by the labels
    # (present findings asked more often) made it about half.
    diseased = {"stage": "late_wet_active", "referral": "urgent", "referral_treatment": "anti_vegf",
                "drusen": True, "drusen_size": "medium", "srf": True}
    healthy = {"stage": "healthy", "referral": "routine", "referral_treatment": "no_referral"}
    answers = []
    for i in range(2000):
        row = {"image_id": f"s{i}", "eye": "left", **(diseased if i % 5 == 0 else healthy)}
        answers += [qa["answer"] for qa in build_qa(kind, row, num_questions, seed=i)
                    if qa["question"].endswith(("drusen in this scan?", "drusen on this OCT?",
                                                "show drusen?", "drusen present?"))]
    assert len(answers) > 200
    share_yes = sum(a.startswith("There is drusen") for a in answers) / len(answers)
    assert share_yes == pytest.approx(0.2, abs=0.06)
    assert all(a.startswith(("There is drusen", "There is no drusen.")) for a in answers)


@pytest.mark.parametrize(("balance", "share"), [(1.0, 0.5), (0.5, 1 / 3)])
def test_presence_balance_thins_the_no_answers_of_rare_findings(balance, share):
    # Drusen in one scan in five: balance 1 asks about absent drusen a quarter as often, so "yes"
    # and "no" come equally often; 0.5 keeps half of them (p / (1 - p)) ** 0.5, a third "yes".
    diseased = {"stage": "intermediate_amd", "referral": "routine", "referral_treatment": "general_attention",
                "drusen": True, "drusen_size": "large"}
    healthy = {"stage": "healthy", "referral": "routine", "referral_treatment": "no_referral"}
    options = {"presence_questions": "all", "presence_balance": balance, "prevalence": {"drusen": 0.2}}
    answers, others = [], 0
    for i in range(2000):
        row = {"image_id": f"s{i}", "eye": "left", **(diseased if i % 5 == 0 else healthy)}
        pairs = build_qa("specific", row, 20, seed=i, options=options)
        answers += [qa["answer"] for qa in pairs if qa["question"].endswith(
            ("drusen in this scan?", "drusen on this OCT?", "show drusen?", "drusen present?"))]
        others += sum("fibrosis" in qa["question"] for qa in pairs)  # no prevalence given: always asked
    assert sum(a.startswith("There is drusen") for a in answers) / len(answers) == pytest.approx(share, abs=0.04)
    assert others == 2000
    row = {"image_id": "s0", "eye": "left", **healthy}
    assert build_qa("specific", row, 20, seed=3, options={"presence_questions": "all", "presence_balance": 0}) == \
        build_qa("specific", row, 20, seed=3, options={"presence_questions": "all"})
    with pytest.raises(ValueError, match="presence_balance"):
        build_qa("specific", row, 20, seed=3, options={"presence_balance": 2})


def test_presence_balance_uses_the_tables_prevalence(tmp_path, table):
    """The generator fills in each biomarker's prevalence among the rows it asks about."""
    from curriculum.generator import _request_options
    from curriculum.modules import ModuleSpec

    rows = load_annotations(table, check_images=False)
    def spec(**options):
        return ModuleSpec(name="m", kind="specific", source="report", prompt_version="v", num_questions=20,
                          system_prompt="", user_prompt="{report}", output_format={}, options=options)

    prevalence = _request_options(spec(presence_balance=1.0), rows)["prevalence"]
    assert prevalence["drusen"] == pytest.approx(rows["drusen"].astype(bool).mean())
    assert 0 < prevalence["drusen"] < 1
    assert "prevalence" not in _request_options(spec(), rows)
    shares = _request_options(spec(stage_balance=1.0), rows)["stage_shares"]
    assert shares == pytest.approx(rows["stage"].value_counts(normalize=True).to_dict())
    assert "stage_shares" not in _request_options(spec(), rows)
    summary, _ = _run("generate_curriculum_part2", tmp_path, table, "dataset/task=specialist_annotate",
                      "dataset/task/curriculum=2_specific_qa", "++dataset.task.curriculum.options.presence_balance=1.0")
    assert summary["records_written"] > 0


def test_part2_all_modules_then_resume(tmp_path, table):
    summary, cfg = _run("generate_curriculum_part2", tmp_path, table, "dataset/task/curriculum=all_modules")
    assert len(summary["modules"]) == 10
    rows = pd.read_csv(table)
    train_val = set(rows.loc[rows.split.isin(["train", "validation"]), "image_id"])
    no_stage = {i for i, r in rows.iterrows() if r.image_id in train_val and not stated_stages(r.report)}
    assert no_stage, "the fixture must hold a report that states no stage"
    for module in summary["modules"]:
        records = read_records(f"{module['store']}/records.jsonl")
        assert records, module["module"]
        assert {r.image_id for r in records} <= train_val, "test images must never get a curriculum"
        assert {r.source for r in records} == {"rules"}
        assert len({r.record_id for r in records}) == len(records)
        assert sum(v for k, v in module["counts"].items() if k.startswith("rejected_")) == 0
    staging = next(m for m in summary["modules"] if m["module"] == "10_staging_accuracy")
    assert staging["counts"]["skipped_no_stated_stage"] == len(no_stage)
    assert staging["counts"]["requests"] == len(train_val) - len(no_stage)
    written = json.loads((tmp_path / "run" / "curriculum_summary.json").read_text())
    assert written["records_written"] == summary["records_written"] > 0

    again, _ = _run("generate_curriculum_part2", tmp_path, table, "dataset/task/curriculum=all_modules")
    assert again["records_written"] == 0
    assert again["counts"].get("requests", 0) == 0
    assert again["records_in_stores"] == summary["records_in_stores"]


def test_part1_max_images_and_images_without_split(tmp_path, table):
    summary, _ = _run("generate_curriculum_part1", tmp_path, table, "generation.max_images=3")
    assert summary["images"] == 3
    records = read_records(summary["modules"][0]["store"])
    assert len({r.image_id for r in records}) == 3
    assert {r.module for r in records} == {"tabular_annotate_rules"}
    assert all(r.prompt_version == "tabular-v3" for r in records)

    no_split = tmp_path / "nosplit"
    table = write_curriculum_table(no_split)
    pd.read_csv(table).drop(columns=["split"]).to_csv(table, index=False)
    with pytest.raises(Exception, match="generation.splits=null"):
        _run("generate_curriculum_part1", tmp_path, table)


def test_demo_uses_every_row(tmp_path):
    table = write_curriculum_table(tmp_path / "samples")
    summary, _ = _run("generate_curriculum", tmp_path, table)
    assert summary["images"] == len(CASES)
    records = read_records(summary["modules"][0]["store"])
    assert {r.module for r in records} == {"demo_curriculum"}
    assert len({r.image_id for r in records}) == len(CASES)


def test_reports_missing_are_skipped_and_counted(tmp_path):
    table = write_curriculum_table(tmp_path / "noreports", with_reports=False)
    summary, _ = _run("generate_curriculum_part2", tmp_path, table)
    assert summary["records_written"] == 0
    assert summary["counts"]["skipped_no_report"] == summary["images"] > 0


def test_bad_prompt_placeholder_is_reported(tmp_path):
    cfg = compose_config("generate_curriculum_part2", tmp_path,
                         ["dataset.task.curriculum.user_prompt='{report} {output_format} {reprot}'"])
    with pytest.raises(CurriculumConfigError, match="reprot"):
        load_modules(cfg.dataset.task)
    cfg = compose_config("generate_curriculum_part2", tmp_path,
                         ["dataset.task.curriculum.user_prompt='{output_format} only'"])
    with pytest.raises(CurriculumConfigError, match="report"):
        load_modules(cfg.dataset.task)


def test_a_changed_table_is_not_mixed_into_an_old_store(tmp_path, table):
    _run("generate_curriculum_part1", tmp_path, table)
    rows = pd.read_csv(table)
    rows.loc[0, "age"] = 99
    rows.to_csv(table, index=False)
    with pytest.raises(GenerationError, match="different annotations for 1 image"):
        _run("generate_curriculum_part1", tmp_path, table)


def test_changed_module_settings_are_not_mixed_into_an_old_store(tmp_path, table, caplog):
    """A store remembers the module settings that wrote it: the same settings resume, other ones
    (an option, the prompt, its version) are refused with what changed, never silently mixed."""
    module = ("dataset/task=specialist_annotate", "dataset/task/curriculum=7_report_writing")
    first, cfg = _run("generate_curriculum_part2", tmp_path, table, *module)
    store = tmp_path / "outputs" / "curriculum" / "7_report_writing"
    assert first["records_written"] > 0
    again, _ = _run("generate_curriculum_part2", tmp_path, table, *module)
    assert again["records_written"] == 0 and again["counts"]["already_done"] > 0
    with pytest.raises(GenerationError, match=r"other settings of module 7_report_writing .*"
                                              r"options\.conclusion: True -> False"):
        _run("generate_curriculum_part2", tmp_path, table, *module, "dataset.task.curriculum.options.conclusion=false")
    with pytest.raises(GenerationError, match=r"prompt_version: 'report-writing-v\d+' -> 'x'"):
        _run("generate_curriculum_part2", tmp_path, table, *module, "dataset.task.curriculum.prompt_version=x")
    lines = (store / "raw_responses.jsonl").read_text().splitlines()
    assert len(lines) == first["counts"]["requests"]  # the refused runs wrote nothing

    # A store written before settings were recorded: kept, with a warning to delete it if they changed.
    old = [json.dumps({k: v for k, v in json.loads(line).items() if k != "settings_hash"}) for line in lines]
    (store / "raw_responses.jsonl").write_text("\n".join(old) + "\n")
    caplog.set_level("WARNING")
    summary, _ = _run("generate_curriculum_part2", tmp_path, table, *module, "dataset.task.curriculum.options.conclusion=false")
    assert summary["records_written"] == 0
    assert "before stores recorded their module's settings" in caplog.text


def test_a_second_backend_in_the_same_folder_is_not_skipped():
    from curriculum.store import request_key

    assert request_key("img", "m", "rules", "rules-v1") != request_key("img", "m", "openai", "gpt-4o")
