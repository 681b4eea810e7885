"""Open-ended judging (rule extractor and LLM judge), the open-ended run and the demo, tiny."""

import json
import shutil

import pandas as pd
import pytest

from curriculum.backends import ChatResponse
from evaluation.demo import find_images, run_demo_inference
from evaluation.judge import LLMJudge, RuleJudge
from evaluation.open_ended import report_tasks, run_open_ended_evaluation
from support.configs import compose_config
from support.scans import write_scan
from support.tables import write_tiny_dataset

REPORT = ("Large drusen are seen nasally with a drusenoid PED. There is no subretinal fluid and no "
          "intraretinal fluid. The stage is intermediate AMD, not late dry AMD. Triage: routine referral.")


def test_rule_judge_reads_a_report():
    found = RuleJudge().extract([REPORT, ""], report_tasks())
    first = found[0]
    assert first["staging"] == "intermediate" and first["referral"] == "routine"
    assert first["biomarker_drusen"] == "present" and first["biomarker_ped"] == "present"
    assert first["biomarker_srf"] == "absent" and first["biomarker_irf"] == "absent"
    assert first["biomarker_shrm"] == "absent"  # not mentioned -> not seen
    assert all(v is None for v in found[1].values())  # an empty report answers nothing


class ScriptedBackend:
    """An LLMBackend that returns canned replies and records the prompts it was sent."""

    source, model, supports_json = "scripted", "scripted-judge", True

    def __init__(self, replies):
        self.replies, self.requests = replies, []

    def complete(self, requests):
        self.requests += requests
        return [ChatResponse(text=r, finish_reason="stop") for r in self.replies[: len(requests)]]

    def close(self):
        pass


def test_llm_judge_validates_the_json():
    reply = json.dumps({"stage": "late_dry", "referral": "urgent!!", "biomarkers": {"srf": "yes", "irf": "absent",
                                                                                    "drusen": "maybe"}})
    backend = ScriptedBackend([f"Sure:\n```json\n{reply}\n```", "no json here"])
    judge = LLMJudge(backend, "R: {report} S: {stages} F: {referrals} B: {biomarkers}")
    found = judge.extract(["report one", "report two"], report_tasks())
    assert found[0]["staging"] == "late_dry" and found[0]["referral"] is None
    assert found[0]["biomarker_srf"] == "present" and found[0]["biomarker_irf"] == "absent"
    assert found[0]["biomarker_drusen"] is None
    assert all(v is None for v in found[1].values())
    prompt = backend.requests[0].messages[0]["content"]
    assert "report one" in prompt and "late_wet_active" in prompt and "double_layer_sign" in prompt
    assert backend.requests[0].response_format == {"type": "json_object"}


def test_llm_judge_refuses_rules_backend_and_bad_prompt():
    rules = ScriptedBackend([])
    rules.source = "rules"
    with pytest.raises(ValueError, match="evaluation.judge=rules"):
        LLMJudge(rules, "{report} {stages} {referrals} {biomarkers}")
    with pytest.raises(ValueError, match="placeholders"):
        LLMJudge(ScriptedBackend([]), "{report}")


@pytest.mark.slow
def test_open_ended_run_tiny(tmp_path, tiny_vlm_dir):
    table = write_tiny_dataset(tmp_path / "data")
    shutil.copytree(tiny_vlm_dir, tmp_path / "models" / "specialist_v5_192px")
    cfg = compose_config("open_ended_evaluation", tmp_path, [
        f"paths.data_dir={table.parent}", f"paths.model_dir={tmp_path / 'models'}", "evaluation.max_images=3",
        "evaluation.generation.max_new_tokens=6", "evaluation.statistics.n_resamples=20", "evaluation.figures=false"])
    out = run_open_ended_evaluation(cfg)
    reports = [json.loads(x) for x in (out["run_dir"] / "reports.jsonl").read_text().splitlines()]
    assert len(reports) == 3 and set(reports[0]["extracted"]) == {t.name for t in report_tasks()}
    accuracy = pd.read_csv(out["run_dir"] / "report_accuracy.csv")
    assert set(accuracy["metric"]) == {"item_accuracy", "all_items_correct", "contradictory_reports",
                                       "repetitive_reports"}
    assert accuracy["value"].between(0, 1).all()
    assert {r["task"] for r in out["results"]} == {t.name for t in report_tasks()}


def test_find_images_folder_glob_and_empty(tmp_path):
    for name in ("b.png", "a.png"):
        write_scan(tmp_path / "scans" / name, seed=1)
    (tmp_path / "scans" / "notes.txt").write_text("x")
    assert [p.name for p in find_images(tmp_path / "scans")] == ["a.png", "b.png"]
    assert [p.name for p in find_images(str(tmp_path / "scans" / "b*"))] == ["b.png"]
    with pytest.raises(FileNotFoundError, match="dataset.task.images"):
        find_images(tmp_path / "empty")


@pytest.mark.slow
def test_demo_inference_tiny(tmp_path, tiny_vlm_dir):
    for name in ("scan1.png", "scan2.png"):
        write_scan(tmp_path / "scans" / name, seed=2)
    shutil.copytree(tiny_vlm_dir, tmp_path / "models" / "specialist_v5_192px")
    cfg = compose_config("inference", tmp_path, [
        "paths=template", f"paths.model_dir={tmp_path / 'models'}", f"dataset.task.images={tmp_path / 'scans'}",
        "demo.max_new_tokens=5", "dataset.task.questions=[What stage?,Any fluid?,Write a report.]"])
    records = run_demo_inference(cfg)
    assert len(records) == 2 * 3
    assert [r["question"] for r in records[:3]] == ["What stage?", "Any fluid?", "Write a report."]
    saved = (tmp_path / "run" / "answers.jsonl").read_text().splitlines()
    assert [json.loads(x)["answer"] for x in saved] == [r["answer"] for r in records]


def test_shipped_demo_questions_are_plain_strings(tmp_path):
    cfg = compose_config("inference", tmp_path, ["paths=template"])
    assert all(isinstance(q, str) for q in cfg.dataset.task.questions)
    assert any(": " in q for q in cfg.dataset.task.questions)  # the one YAML once read as a mapping


def test_demo_rejects_a_question_that_is_not_text(tmp_path, tiny_vlm_dir):
    shutil.copytree(tiny_vlm_dir, tmp_path / "models" / "specialist_v5_192px")
    cfg = compose_config("inference", tmp_path, ["paths=template", f"paths.model_dir={tmp_path / 'models'}",
                                                 "dataset.task.questions=[{Describe: findings}]"])
    with pytest.raises(ValueError, match="quote these in YAML"):
        run_demo_inference(cfg)


@pytest.mark.parametrize("override, match", [
    ("dataset.task.questions=['What stage?', '  ']", "an empty question"),
    ("dataset.task.questions=[]", "is empty"),
])
def test_demo_rejects_question_lists_that_are_not_lists_of_text(tmp_path, tiny_vlm_dir, override, match):
    shutil.copytree(tiny_vlm_dir, tmp_path / "models" / "specialist_v5_192px")
    cfg = compose_config("inference", tmp_path, ["paths=template", f"paths.model_dir={tmp_path / 'models'}", override])
    with pytest.raises(ValueError, match=match):
        run_demo_inference(cfg)
