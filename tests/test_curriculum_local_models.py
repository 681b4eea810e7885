"""Part 2 through real local models: the local Hugging Face backend in process, and the OpenAI
backend against a real `transformers serve` on loopback serving a tiny model."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from support.configs import compose_config
from support.tables import write_curriculum_table
from support.tiny_models import save_tiny_chat_model, tiny_chat_backend_cfg

from curriculum.api import generate_curriculum
from curriculum.backends import ChatRequest, build_backend
from curriculum.store import RAW_FILE
from dataset.qa_records import read_records


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return save_tiny_chat_model(tmp_path_factory.mktemp("tiny_chat_model"))


def test_local_hf_backend_batches_and_reports_finish(tiny_model):
    lm = tiny_chat_backend_cfg(tiny_model, batch_size=3, max_tokens=4, temperature=1.0)
    backend = build_backend(lm, {})
    requests = [ChatRequest([{"role": "user", "content": "x " * (i + 1)}]) for i in range(5)]
    responses = backend.complete(requests)
    assert len(responses) == 5
    assert all(r.finish_reason in ("stop", "length") for r in responses)
    assert all(r.usage.completion_tokens <= 4 for r in responses)
    assert any("Q:" in r.text for r in responses)


def test_local_hf_backend_runs_part2(tmp_path, tiny_model):
    table = write_curriculum_table(tmp_path / "data")
    cfg = compose_config("generate_curriculum_part2", tmp_path, [
        f"generation.annotations_file={table}", "generation.max_images=3", "model/language_model=llama3-8b_instruct",
        f"model.language_model.path={tiny_model}", "model.language_model.max_tokens=6",
        "model.language_model.dtype=float32", "model.language_model.device=cpu"])
    summary = generate_curriculum(cfg)
    assert summary["backend"] == "local_hf" and summary["counts"]["requests"] == 3
    store = tmp_path / "outputs" / "curriculum" / "1_advanced_biomarkers_guidelines"
    assert len((store / RAW_FILE).read_text().splitlines()) == 3
    assert summary["counts"]["pairs_parsed"] == summary["counts"]["pairs_kept"] + sum(
        v for k, v in summary["counts"].items() if k.startswith("rejected_"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_part2_through_transformers_serve(tmp_path, tiny_model):
    port = _free_port()
    server = subprocess.Popen([str(Path(sys.executable).with_name("transformers")), "serve", str(tiny_model), "--host", "127.0.0.1", "--port", str(port),
                               "--device", "cpu"], env=dict(os.environ, HF_HUB_OFFLINE="1"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "transformers serve did not come up"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.5)
        table = write_curriculum_table(tmp_path / "data")
        cfg = compose_config("generate_curriculum_part2", tmp_path, [
            f"generation.annotations_file={table}", "generation.max_images=3",
            "dataset/task/curriculum=all_modules", "model/language_model=openai_compatible",
            f"model.language_model.base_url=http://127.0.0.1:{port}/v1", f"model.language_model.model={tiny_model}",
            "model.language_model.max_tokens=6", "model.language_model.max_concurrency=2"])
        summary = generate_curriculum(cfg)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    counts = summary["counts"]
    assert summary["backend"] == "openai_compatible" and len(summary["modules"]) == 10
    assert counts["requests"] >= 3 * 8 and counts.get("requests_failed", 0) == 0
    assert counts["pairs_parsed"] > 0 and counts["records_written"] == counts["pairs_kept"] > 0
    assert summary["completion_tokens"] > 0
    for module in summary["modules"]:
        raw = (tmp_path / "outputs" / "curriculum" / module["module"] / RAW_FILE).read_text().splitlines()
        assert len(raw) == module["counts"]["requests"]
    # The server samples, so which modules keep a pair varies from run to run; every kept record, in
    # whichever module, must name the served model.
    kept = [m["module"] for m in summary["modules"] if m["counts"].get("records_written", 0) > 0]
    assert kept
    for module in kept:
        records = read_records(tmp_path / "outputs" / "curriculum" / module / "records.jsonl")
        assert len(records) == next(m for m in summary["modules"] if m["module"] == module)["counts"]["records_written"]
        assert all(r.model == str(tiny_model) for r in records)


@pytest.mark.gpu
def test_local_hf_backend_on_cuda(tiny_model):
    lm = tiny_chat_backend_cfg(tiny_model, batch_size=2, max_tokens=4, dtype="bfloat16")
    backend = build_backend(lm, {})
    assert backend.device == "cuda"
    responses = backend.complete([ChatRequest([{"role": "user", "content": "x"}])] * 3)
    assert len(responses) == 3 and all(r.usage.completion_tokens <= 4 for r in responses)
