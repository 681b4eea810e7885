"""A generation killed with SIGKILL part-way resumes to exactly the full record set."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from support.configs import ROOT, compose_config
from support.openai_server import ScriptedServer, completion
from support.tables import write_curriculum_table

from curriculum.api import generate_curriculum
from curriculum.store import RAW_FILE, request_key
from dataset.qa_records import QARecord

MODULE = "2_specific_qa"


def _answer(number, body):
    # Two valid pairs that name the image, so every request's records are recognisable.
    prompt = body["messages"][-1]["content"]
    return 200, {}, completion(f"Q1: What does report {len(prompt)} describe?\nA1: The scan.\n"
                               f"Q2: Is the scan readable?\nA2: Yes, it is readable.")


def _overrides(tmp_path, table, server):
    return [f"paths.root_dir={ROOT}", f"paths.output_dir={tmp_path / 'outputs'}", f"run_dir={tmp_path / 'run'}",
            f"generation.annotations_file={table}", "generation.batch_size=2",
            f"dataset/task/curriculum={MODULE}", "model/language_model=openai_compatible",
            f"model.language_model.base_url={server.base_url}", "model.language_model.model=slow-model",
            "model.language_model.max_concurrency=2"]


@pytest.mark.slow
def test_sigkill_then_rerun_gives_every_record_once(tmp_path):
    table = write_curriculum_table(tmp_path / "data", copies=3)
    store = tmp_path / "outputs" / "curriculum" / MODULE
    with ScriptedServer(_answer, delay_s=0.4) as server:
        env = dict(os.environ, HF_HUB_OFFLINE="1")
        process = subprocess.Popen([sys.executable, str(ROOT / "run" / "generate_curriculum_part2.py"),
                                    *_overrides(tmp_path, table, server)],
                                   cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            raw = store / RAW_FILE
            if raw.exists() and raw.read_bytes().count(b"\n") >= 3:
                break
            time.sleep(0.05)
        assert process.poll() is None, f"the run ended before it could be killed: {process.stderr.read()!r}"
        process.send_signal(signal.SIGKILL)
        process.wait()
        done_before = (store / RAW_FILE).read_bytes().count(b"\n")

        cfg = compose_config("generate_curriculum_part2", tmp_path, _overrides(tmp_path, table, server)[3:])
        summary = generate_curriculum(cfg)

    module = summary["modules"][0]
    images = module["counts"]["requests"] + module["counts"]["already_done"]
    assert module["counts"]["already_done"] >= 3 and done_before < images, "the kill must land part-way"

    lines = [json.loads(line) for line in (store / "records.jsonl").read_text().splitlines()]
    ids = [line["record_id"] for line in lines]
    assert len(ids) == len(set(ids)), "no record is stored twice"
    image_ids = {line["image_id"] for line in lines}
    expected = {QARecord.make_id(image, MODULE, index, "openai_compatible", "slow-model")
                for image in image_ids for index in range(2)}
    assert set(ids) == expected and len(image_ids) == images
    keys = [json.loads(line)["request_key"] for line in (store / RAW_FILE).read_text().splitlines()]
    assert sorted(keys) == sorted({request_key(image, MODULE, "openai_compatible", "slow-model") for image in image_ids})
