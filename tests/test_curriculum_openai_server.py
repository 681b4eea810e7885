"""The OpenAI backend against a local server with crafted answers: malformed and truncated
outputs, 429/500 then success, 401/400, a dead server, JSON mode and bounded concurrency."""

import json

import pytest
from support.configs import compose_config, config_entry
from support.openai_server import ScriptedServer, completion
from support.tables import write_curriculum_table

from curriculum.api import generate_curriculum
from curriculum.backends import BackendFatalError, ChatRequest, build_backend
from curriculum.generator import GenerationError
from curriculum.store import RAW_FILE
from dataset.qa_records import read_records

GOOD = completion("Q1: Can you see the retinal layers?\nA1: Yes, they are visible.\n"
                  "Q2: Is the image sharp?\nA2: Mostly.")


def _run(tmp_path, server, *overrides, images=2):
    table = write_curriculum_table(tmp_path / "data")
    cfg = compose_config("generate_curriculum_part2", tmp_path, [
        f"generation.annotations_file={table}", f"generation.max_images={images}",
        "model/language_model=openai_compatible", f"model.language_model.base_url={server.base_url}",
        "model.language_model.model=test-model", "model.language_model.max_retries=2",
        "model.language_model.timeout_s=20", *overrides])
    return generate_curriculum(cfg), tmp_path / "outputs" / "curriculum" / "1_advanced_biomarkers_guidelines"


def _raw_lines(store):
    path = store / RAW_FILE
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_malformed_answers_are_counted_and_audited(tmp_path):
    with ScriptedServer(lambda n, body: (200, {}, completion("Sorry, I can only chat about the weather."))) as server:
        summary, store = _run(tmp_path, server, "model.language_model.prices={input:1.0,output:2.0}")
    assert summary["records_written"] == 0
    assert summary["counts"]["responses_unparseable"] == 2
    assert len(_raw_lines(store)) == 2, "raw answers are kept for audit (a rerun asks again, up to generation.max_attempts)"
    assert summary["prompt_tokens"] == 200 and summary["completion_tokens"] == 100
    assert summary["cost_usd"] == pytest.approx((200 * 1.0 + 100 * 2.0) / 1e6)


def test_truncated_answers_lose_only_their_cut_pair(tmp_path):
    cut = completion("Q1: Can you see the retinal layers?\nA1: Yes.\nQ2: Is the image sharp?\nA2: It is mostl",
                     finish_reason="length")
    with ScriptedServer(lambda n, body: (200, {}, cut)) as server:
        summary, store = _run(tmp_path, server)
    assert summary["counts"]["rejected_truncated"] == 2
    assert summary["counts"]["responses_truncated"] == 2
    records = read_records(store)
    assert len(records) == 2 and all(r.answer == "Yes." for r in records)


@pytest.mark.parametrize("status,headers", [(429, {"Retry-After": "1"}), (500, {}), (503, {"retry-after-ms": "100"})])
def test_transient_errors_are_retried_then_succeed(tmp_path, status, headers):
    def script(number, body):
        return (status, headers, {"error": {"message": "busy"}}) if number == 0 else (200, {}, GOOD)

    with ScriptedServer(script) as server:
        summary, store = _run(tmp_path, server, images=1)
        assert len(server.requests) == 2
        if "Retry-After" in headers:  # the server's wait is honoured (a lower bound, not a speed test)
            assert server.arrivals[1] - server.arrivals[0] >= float(headers["Retry-After"]) - 0.05
    assert summary["http_status_counts"] == {"200": 1, str(status): 1}
    assert len(read_records(store)) == 2


@pytest.mark.parametrize("status,words", [(401, "OPENAI_API_KEY"), (403, "permission"), (400, "malformed")])
def test_auth_and_bad_requests_fail_at_once(tmp_path, status, words, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-canary-0123456789")
    body = {"error": {"message": "Incorrect API key provided: sk-test-canary-0123456789"}}
    with ScriptedServer(lambda n, b: (status, {}, body)) as server:
        with pytest.raises(BackendFatalError, match=words) as failure:
            _run(tmp_path, server, images=1)
        assert len(server.requests) == 1, "no retry for a fatal status"
    assert "canary" not in str(failure.value)
    assert not _raw_lines(tmp_path / "outputs" / "curriculum" / "1_advanced_biomarkers_guidelines")


def test_a_dead_server_stops_the_run_and_leaves_requests_undone(tmp_path):
    with ScriptedServer(lambda n, b: (502, {"retry-after-ms": "10"}, {"error": {"message": "down"}})) as server:
        with pytest.raises(GenerationError, match="rerun to resume|Rerun to resume"):
            _run(tmp_path, server)
        assert len(server.requests) == 2 * 3, "each request tried once plus max_retries=2 retries"
    assert not _raw_lines(tmp_path / "outputs" / "curriculum" / "1_advanced_biomarkers_guidelines")


def test_json_mode_and_bounded_concurrency(tmp_path):
    answer = completion(json.dumps({"qa": [{"question": "Can you see the layers?", "answer": "Yes."}]}))
    with ScriptedServer(lambda n, b: (200, {}, answer), delay_s=0.3) as server:
        lm = config_entry("model/language_model/base", "openai", name="t", model="test-model",
                          base_url=server.base_url, requires_api_key=False, structured_output="json_schema",
                          max_concurrency=2)
        backend = build_backend(lm, {})
        requests = [ChatRequest([{"role": "user", "content": f"hi {i}"}],
                                response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {}}})
                    for i in range(6)]
        responses = backend.complete(requests)
        assert [r.ok for r in responses] == [True] * 6
        assert server.max_in_flight == 2
        assert all(body["response_format"]["type"] == "json_schema" for body in server.requests)


def test_timeouts_are_retried_then_reported(tmp_path):
    with ScriptedServer(lambda n, b: (200, {}, GOOD), delay_s=1.5) as server:
        with pytest.raises(GenerationError, match="APITimeoutError"):
            _run(tmp_path, server, "model.language_model.timeout_s=0.3", "model.language_model.max_retries=1",
                 images=1)
        assert len(server.requests) == 2, "one attempt and one retry"


def test_a_body_that_is_not_a_chat_completion_is_a_failed_request(tmp_path):
    with ScriptedServer(lambda n, b: (200, {}, {"unexpected": True})) as server:
        with pytest.raises(GenerationError, match="no choices"):
            _run(tmp_path, server, images=1)
        assert len(server.requests) == 1
    assert not _raw_lines(tmp_path / "outputs" / "curriculum" / "1_advanced_biomarkers_guidelines")
