"""An API key given by environment or on the command line reaches the server and nothing else:
no file under the output and run folders, no log line, no error message."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.configs import ROOT
from support.openai_server import ScriptedServer, completion
from support.tables import write_curriculum_table

from dataset.secrets import MissingAPIKeyError, redact, register_secret, require_api_key, resolve_api_key

CANARY = "sk-canary-7f3a9c1e5b2d4f6a8c0e"
ANSWER = completion(json.dumps({"qa": [{"question": "Can you see the retinal layers?", "answer": "Yes."}]}))


def _script(status):
    def script(number, body):
        if status == 200:
            return 200, {}, ANSWER
        return status, {}, {"error": {"message": f"Incorrect API key provided: {CANARY}"}}
    return script


def _run_cli(tmp_path, server, extra, env_key=None):
    table = write_curriculum_table(tmp_path / "data")
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env["HF_HUB_OFFLINE"] = "1"
    if env_key:
        env["OPENAI_API_KEY"] = env_key
    command = [sys.executable, str(ROOT / "run" / "generate_curriculum_part2.py"), "dataset=retina",
               "model/language_model=gpt-4o", "dataset/task=specialist_annotate",
               "dataset/task/curriculum=1_advanced_biomarkers_guidelines", f"paths.output_dir={tmp_path / 'out'}",
               f"generation.annotations_file={table}", "generation.max_images=2",
               f"model.language_model.base_url={server.base_url}", "model.language_model.max_retries=0",
               "hydra.verbose=true", *extra]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _files_containing(folder: Path, secret: str) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


@pytest.mark.slow
@pytest.mark.parametrize("way,status", [("env", 401), ("command_line", 200)])
def test_canary_key_leaks_nowhere(tmp_path, way, status):
    with ScriptedServer(_script(status)) as server:
        extra = [f"paths.openai_api_key={CANARY}"] if way == "command_line" else []
        result = _run_cli(tmp_path, server, extra, env_key=CANARY if way == "env" else None)
        assert server.headers and server.headers[0].get("authorization") == f"Bearer {CANARY}"
    if status == 200:
        assert result.returncode == 0, result.stderr[-3000:]
        records = list((tmp_path / "out" / "curriculum").rglob("records.jsonl"))
        assert records and records[0].read_text().strip()
    else:
        assert result.returncode == 2
        assert "HTTP 401" in result.stderr and "OPENAI_API_KEY" in result.stderr
        assert "Traceback" not in result.stderr
    # Hydra names the job, and so the run folder, after the script behind `dataset.entry.entry`.
    runs = tmp_path / "out" / "runs" / "generate_curriculum_part2"
    assert list(runs.rglob("resolved_config.yaml")), "the run folder was written"
    assert list((tmp_path / "out" / "runs").rglob("*.log")), "the job log was written"
    assert _files_containing(tmp_path, CANARY) == []
    assert CANARY not in result.stdout and CANARY not in result.stderr


@pytest.mark.slow
def test_missing_key_stops_before_any_work(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "run" / "generate_curriculum_part1.py"), "dataset=retina",
         "model/language_model=gpt-4o", "dataset/task=tabular_annotate",
         "dataset/task/curriculum=tabular_annotate_rules", f"paths.output_dir={tmp_path}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "OPENAI_API_KEY" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "curriculum").exists()


def test_key_sources_and_redaction(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY"):
        require_api_key({"openai_api_key": None}, model="gpt-4o")
    key_file = tmp_path / "key.txt"
    key_file.write_text("sk-from-file-000111222333\n")
    assert resolve_api_key({"openai_api_key_file": str(key_file)}) == "sk-from-file-000111222333"
    assert resolve_api_key({"openai_api_key": "sk-from-config-444555"}) == "sk-from-config-444555"
    monkeypatch.setenv("OPENAI_API_KEY", "env-key-wins-0000")
    assert resolve_api_key({"openai_api_key": "sk-from-config-444555"}) == "env-key-wins-0000"
    with pytest.raises(MissingAPIKeyError, match="does not exist"):
        monkeypatch.delenv("OPENAI_API_KEY")
        resolve_api_key({"openai_api_key_file": str(tmp_path / "missing.txt")})
    register_secret("plain-secret-value")
    assert "plain-secret-value" not in redact("header: plain-secret-value and sk-abcdefghijklmnop")
    assert "sk-abcdefghijklmnop" not in redact("sk-abcdefghijklmnop")
