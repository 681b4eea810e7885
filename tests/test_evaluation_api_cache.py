"""Paid API answers are kept: a failed open-ended run keeps the answers that arrived and a rerun
asks only for the missing ones; a failing LLM judge is counted as the judge's failure, not the
evaluated model's invalid answers. Against a real local HTTP server."""

import json

import pytest
from support.openai_server import ScriptedServer, completion

from curriculum.backends.base import BackendError
from evaluation.answer_cache import CACHE_FOLDER
from evaluation.open_ended import run_open_ended_evaluation
from support.configs import compose_config
from support.tables import write_tiny_dataset

REPORT = "Large drusen with RPE elevation; intermediate AMD. Routine referral."
JUDGED = json.dumps({"stage": "intermediate", "referral": "routine", "biomarkers": {"drusen": "present"}})


def _is_vision(body) -> bool:
    content = body["messages"][0]["content"]
    return isinstance(content, list) and any(part.get("type") == "image_url" for part in content)


def _cfg(tmp_path, table, server, *extra):
    return compose_config("open_ended_evaluation", tmp_path, [
        f"dataset.annotations_file={table}", f"dataset.images_dir={table.parent}",
        "pretrained_models=openai_compatible_vision", f"pretrained_models.base_url={server.base_url}",
        "pretrained_models.model=served-vlm", "evaluation.statistics.n_resamples=20",
        "evaluation.figures=false", "evaluation.generation.concurrency=2", *extra])


@pytest.mark.slow
def test_a_failed_run_keeps_paid_answers_and_a_rerun_asks_only_for_the_missing(tmp_path):
    table = write_tiny_dataset(tmp_path / "data")
    vision = []

    def script(number, body):
        vision.append(number)
        if len(vision) == 3:  # one request of the first run fails (400: not retried)
            return 400, {}, {"error": {"message": "image too large"}}
        return 200, {}, completion(REPORT)

    with ScriptedServer(script) as server:
        with pytest.raises(BackendError, match=r"1 of 6 requests .* failed .*5 answers that arrived are cached"):
            run_open_ended_evaluation(_cfg(tmp_path, table, server))
        cache = tmp_path / "outputs" / CACHE_FOLDER / "openai_compatible_vision.jsonl"
        assert len(cache.read_text().splitlines()) == 5
        out = run_open_ended_evaluation(_cfg(tmp_path, table, server))
        assert len(server.requests) == 7, "the rerun asked only for the one missing answer"
        run_open_ended_evaluation(_cfg(tmp_path, table, server))
        assert len(server.requests) == 7, "a third run is answered from the cache alone"
    assert len(cache.read_text().splitlines()) == 6
    assert out["results"]


@pytest.mark.slow
def test_judge_failures_are_not_the_models_invalid_answers(tmp_path):
    table = write_tiny_dataset(tmp_path / "data")
    judged = []

    def script(number, body):
        if _is_vision(body):  # a different report per request, so each gets its own judgement
            return 200, {}, completion(f"{REPORT} Seen on request {number}.")
        judged.append(number)
        if len(judged) == 2:
            return 200, {}, completion("I cannot help with that.")
        return 200, {}, completion(JUDGED)

    with ScriptedServer(script) as server:
        overrides = ["evaluation.judge=llm", "model/language_model=openai_compatible",
                     f"model.language_model.base_url={server.base_url}", "model.language_model.model=judge",
                     "model.language_model.max_retries=0", "model.language_model.max_concurrency=1"]
        out = run_open_ended_evaluation(_cfg(tmp_path, table, server, *overrides))
        assert len(judged) == 6
        reports = [json.loads(line) for line in (out["run_dir"] / "reports.jsonl").read_text().splitlines()]
        failed = [r for r in reports if r["judge_error"]]
        assert len(failed) == 1 and "no JSON" in failed[0]["judge_error"]
        predictions = [json.loads(line) for line in (out["run_dir"] / "predictions.jsonl").read_text().splitlines()]
        model_rows = [p for p in predictions if p["model"] == "openai_compatible_vision"]
        assert failed[0]["image_id"] not in {p["image_id"] for p in model_rows}
        assert all(p["prediction"] is not None for p in model_rows if p["task"] == "staging")
        metrics = json.loads((out["run_dir"] / "metrics.json").read_text())
        assert metrics["judge_failures"] == {"openai_compatible_vision": 1}

        rerun = run_open_ended_evaluation(_cfg(tmp_path, table, server, *overrides))
        assert len(judged) == 7, "the rerun asked the judge only about the report it failed on"
    metrics = json.loads((rerun["run_dir"] / "metrics.json").read_text())
    assert metrics["judge_failures"] == {"openai_compatible_vision": 0}
