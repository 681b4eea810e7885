"""Hydra multirun (`-m`) through the real entry scripts: each point in its own folder, and a
canary API key in no file of the sweep and nowhere in the output (also when Hydra echoes a
mistyped override)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from support.configs import ROOT
from support.openai_server import ScriptedServer, completion
from support.tables import write_curriculum_table
from support.training import training_overrides, write_training_data

CANARY = "canary-key-4b8e2d6f0a1c3e5"
SK_CANARY = "sk-canary0sweep0d41e9b7a3"


def _run(script: str, args: list[str], env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env.update({"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **(env_extra or {})})
    return subprocess.run([sys.executable, str(ROOT / "run" / script), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def _files_containing(folder: Path, secret: str) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def _sweep_dir(output_dir: Path, job: str) -> Path:
    found = list((output_dir / "multirun" / job).glob("*/multirun.yaml"))
    assert len(found) == 1, found
    return found[0].parent


def _assert_no_leak(result, folder, secret=CANARY):
    output = result.stdout + result.stderr
    assert secret not in output, output[-2000:]
    assert _files_containing(folder, secret) == []


@pytest.mark.slow
def test_make_dataset_sweep_writes_each_point_in_its_own_folder(tmp_path):
    out = tmp_path / "out"
    result = _run("make_dataset.py", ["-m", "seed=1,2", "dataset.phantom.num_images=20", f"paths.output_dir={out}",
                                      f"paths.openai_api_key={CANARY}", "hydra.verbose=true"])
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = _sweep_dir(out, "make_dataset")
    tables = []
    for point, seed in (("0", 1), ("1", 2)):
        config = yaml.safe_load((sweep / point / "resolved_config.yaml").read_text())
        assert config["seed"] == seed
        assert config["paths"]["openai_api_key"] == "***redacted***"
        table = sweep / point / "phantom" / "annotations.csv"
        assert len(pd.read_csv(table)) == 20
        tables.append(table.read_text())
    assert tables[0] != tables[1], "each seed's scans must be kept, not overwritten"
    assert not (out / "phantom").exists(), "a sweep point must not write the shared data folder"
    _assert_no_leak(result, tmp_path)


@pytest.mark.slow
def test_a_sweep_point_may_still_name_its_data_folder(tmp_path):
    out = tmp_path / "out"
    result = _run("make_dataset.py", ["-m", "dataset.phantom.num_images=8,9", f"paths.output_dir={out}",
                                      "dataset.phantom.output_dir=${paths.output_dir}/data_${dataset.phantom.num_images}"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(pd.read_csv(out / "data_8" / "annotations.csv")) == 8
    assert len(pd.read_csv(out / "data_9" / "annotations.csv")) == 9


@pytest.mark.slow
def test_a_key_written_in_a_paths_file_stays_out_of_the_sweep_files(tmp_path):
    conf = tmp_path / "conf" / "paths"
    conf.mkdir(parents=True)
    (conf / "mine.yaml").write_text("defaults:\n  - default\n  - _self_\n\n"
                                    f"output_dir: {tmp_path / 'out'}\nopenai_api_key: {SK_CANARY}\n")
    result = _run("make_dataset.py", ["-m", "seed=3,4", "dataset.phantom.num_images=6",
                                      f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "paths=mine"])
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = _sweep_dir(tmp_path / "out", "make_dataset")
    assert {p.name for p in sweep.iterdir() if p.is_dir()} == {"0", "1"}
    _assert_no_leak(result, tmp_path / "out", SK_CANARY)


@pytest.mark.slow
def test_the_key_reaches_every_point_of_a_sweep_and_nothing_else(tmp_path):
    table = write_curriculum_table(tmp_path / "data")
    answer = completion(json.dumps({"qa": [{"question": "Can you see the retinal layers?", "answer": "Yes."}]}))
    with ScriptedServer(lambda number, body: (200, {}, answer)) as server:
        result = _run("generate_curriculum_part2.py", [
            "-m", "generation.max_images=1,2", "dataset=retina", "model/language_model=gpt-4o",
            "dataset/task=specialist_annotate", "dataset/task/curriculum=1_advanced_biomarkers_guidelines",
            f"paths.output_dir={tmp_path / 'out'}", f"generation.annotations_file={table}",
            f"model.language_model.base_url={server.base_url}", "model.language_model.max_retries=0",
            f"paths.openai_api_key={CANARY}", "hydra.verbose=true"])
        headers = list(server.headers)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(headers) >= 2 and {h.get("authorization") for h in headers} == {f"Bearer {CANARY}"}
    assert len(list(_sweep_dir(tmp_path / "out", "generate_curriculum_part2").glob("[01]/resolved_config.yaml"))) == 2
    _assert_no_leak(result, tmp_path)


@pytest.mark.parametrize("script", ["make_dataset.py", "closed_ended_evaluation.py"])
@pytest.mark.parametrize("sweep", [[], ["-m"]])
@pytest.mark.parametrize("secret", [CANARY, SK_CANARY])
def test_a_mistyped_key_override_is_redacted_in_hydras_error(tmp_path, script, sweep, secret):
    result = _run(script, [*sweep, f"path.openai_api_key={secret}", f"paths.output_dir={tmp_path}"])
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "path.openai_api_key" in output and "***redacted***" in output
    assert secret not in output
    assert _files_containing(tmp_path, secret) == []


@pytest.mark.slow
def test_a_training_sweep_runs_each_point_in_its_own_folder(tmp_path):
    write_training_data(tmp_path)
    overrides = [o for o in training_overrides(tmp_path) if not o.startswith("run_dir=")]
    result = _run("vision_language_pretraining.py", [
        "-m", "seed=1,2", *overrides, "paths.model_dir=${run_dir}/models", f"paths.openai_api_key={CANARY}"])
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = _sweep_dir(tmp_path / "outputs", "vision_language_pretraining")
    for point in ("0", "1"):
        assert (sweep / point / "models" / "retinavlm_base_192px" / "config.json").is_file()
        assert (sweep / point / "resolved_config.yaml").is_file()
    _assert_no_leak(result, tmp_path)


def test_a_secret_given_as_a_sweep_is_refused_before_any_point_runs(tmp_path):
    result = _run("make_dataset.py", ["-m", f"paths.openai_api_key={CANARY},{SK_CANARY}", f"paths.output_dir={tmp_path}",
                                      "dataset.phantom.num_images=4"])
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "a secret must be one value" in output and "Traceback" not in output
    assert not list(tmp_path.rglob("annotations.csv"))
    for secret in (CANARY, SK_CANARY):
        assert secret not in output and _files_containing(tmp_path, secret) == []


@pytest.mark.slow
def test_the_issue_command_as_written_sweeps_from_any_folder(tmp_path):
    # No paths override: paths.root_dir comes from ${hydra:runtime.cwd}, which the sweeper must
    # resolve before any job runs (it raised InterpolationResolutionError).
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "SPECIALIST_VLMS_ROOT")}
    env.update({"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    result = subprocess.run([sys.executable, str(ROOT / "run" / "make_dataset.py"), "-m", "seed=1,2",
                             "dataset.phantom.num_images=20"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = _sweep_dir(tmp_path / "outputs", "make_dataset")
    assert sorted(p.parent.parent.name for p in sweep.glob("*/phantom/annotations.csv")) == ["0", "1"]
