"""The OpenAI-compatible vision baseline path against a real `transformers serve` on loopback."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from evaluation.closed_ended import run_closed_ended_evaluation
from evaluation.data import load_evaluation_table, load_model_images
from evaluation.vision_models import LocalVisionModel
from support.configs import compose_config
from support.tables import write_tiny_dataset
from models.registry import open_model

SERVE_TIMEOUT_S = 180


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def served_model(tmp_path, tiny_vlm_dir):
    """`transformers serve <tiny model dir>` on a free loopback port; yields (base_url, model name)."""
    model_dir = tmp_path / "served_model"
    shutil.copytree(tiny_vlm_dir, model_dir)
    port = _free_port()
    cli = Path(sys.executable).with_name("transformers")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen([str(cli), "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port),
                               "--device", "cpu"], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + SERVE_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"transformers serve did not come up:\n{(tmp_path / 'serve.log').read_text()[-2000:]}")
            time.sleep(1)
        yield f"http://127.0.0.1:{port}/v1", str(model_dir)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.mark.slow
def test_served_model_evaluated_through_the_openai_path(tmp_path, served_model, monkeypatch):
    base_url, model_name = served_model
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    table = write_tiny_dataset(tmp_path / "data")
    cfg = compose_config("closed_ended_evaluation", tmp_path, [
        f"paths.data_dir={table.parent}", "pretrained_models=openai_compatible_vision",
        f"pretrained_models.base_url={base_url}", f"pretrained_models.model={model_name}",
        "evaluation.max_images=3", "evaluation.generation.max_new_tokens=8",
        "evaluation.statistics.n_resamples=20", "evaluation.figures=false"])
    # likelihood is asked for, but an endpoint has no token probabilities: the run falls back.
    out = run_closed_ended_evaluation(cfg)
    lines = [json.loads(x) for x in (out["run_dir"] / "predictions.jsonl").read_text().splitlines()]
    assert len(lines) == 3 and all(line["mode"] == "two_step" and line["model"] == "openai_compatible_vision"
                                   for line in lines)
    # The server ran the same model on the same images and prompts: greedy answers must match a
    # local run exactly (this checks the image travelled as a data URL and the prompt layout).
    _, rows = load_evaluation_table(cfg.dataset, "test", 3)
    images = load_model_images(rows, cfg.dataset)
    opened = open_model({"name": "local", "kind": "local", "path": model_name}, device="cpu")
    local = LocalVisionModel("local", *opened, max_new_tokens=8)
    reports = local.generate(images, [str(cfg.evaluation.prompts.report_question)] * 3)
    assert [line["report"] for line in lines] == reports
