"""Curriculum training end to end: the two-stage chain, stock loading, resume after SIGKILL, DDP."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from safetensors.torch import load_file

from support.training import part_2_overrides, training_overrides, write_training_data
from dataset.errors import ConfigError
from models.training import run_vision_language_pretraining
from models.precision import native_bf16, resolve_mixed_precision

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


def _compose(overrides):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name="vision_language_pretraining", overrides=overrides)


def test_missing_curriculum_store_names_the_generation_command(tmp_path):
    write_training_data(tmp_path)
    cfg = _compose(training_overrides(tmp_path, ["paths.curriculum_dir=" + str(tmp_path / "nowhere")]))
    with pytest.raises(FileNotFoundError, match="generate_curriculum_part1.py .*tabular_annotate_rules"):
        run_vision_language_pretraining(cfg)


@pytest.mark.slow
def test_two_stages_chain_and_the_specialist_runs_in_a_stock_pipeline(tmp_path):
    table = write_training_data(tmp_path)
    part_1 = run_vision_language_pretraining(_compose(training_overrides(
        tmp_path, ["training.log_with=[csv,tensorboard]"])))
    assert part_1["output_model"].endswith("retinavlm_base_192px") and part_1["steps"] == 4
    assert part_1["eval_loss"] and part_1["vision_pretraining"]["steps"] == 2
    assert 0 < part_1["trainable_parameters"] < part_1["total_parameters"]  # the pretrained tower is frozen
    metrics = (tmp_path / "run" / "metrics.csv").read_text()
    assert "eval/loss" in metrics and "train/loss" in metrics
    assert list((tmp_path / "run").glob("**/events.out.tfevents*"))  # TensorBoard too

    part_2 = run_vision_language_pretraining(_compose(training_overrides(
        tmp_path, ["pretrained_models=retinavlm_base_192px", f"run_dir={tmp_path / 'run2'}", *part_2_overrides()])))
    specialist = Path(part_2["output_model"])
    assert specialist.name == "specialist_v5_192px" and part_2["train_examples"] == 24 * 2 // 2 * 2

    # A fresh interpreter that imports nothing from the project loads and runs the specialist.
    scan = table.parent / "images" / "scan001.png"
    script = textwrap.dedent(f"""
        import sys
        from PIL import Image
        from transformers import AutoModelForImageTextToText, pipeline
        model = AutoModelForImageTextToText.from_pretrained({str(specialist)!r})
        pipe = pipeline("image-text-to-text", model={str(specialist)!r})
        image = Image.open({str(scan)!r}).convert("RGB")
        messages = [{{"role": "user", "content": [{{"type": "image", "image": image}},
                                                 {{"type": "text", "text": "Are there drusen?"}}]}}]
        out = pipe(text=messages, max_new_tokens=12)
        answer = out[0]["generated_text"][-1]["content"]
        project = {{"models", "dataset", "curriculum", "evaluation", "saliency"}}
        assert not project & {{m.split(".")[0] for m in sys.modules}}, "project code was imported"
        print("ANSWER:" + repr(answer))
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ANSWER:'" in done.stdout


def test_auto_precision_is_bf16_only_where_the_machine_computes_in_it():
    assert resolve_mixed_precision("auto") == ("bf16" if native_bf16() else "no")
    assert [resolve_mixed_precision(p) for p in ("no", "bf16", "fp16")] == ["no", "bf16", "fp16"]
    with pytest.raises(ConfigError, match="training.mixed_precision must be one of no, bf16, fp16, auto"):
        resolve_mixed_precision("fp8")


@pytest.mark.slow
def test_bf16_training_keeps_float32_weights_and_records_its_precision(tmp_path):
    write_training_data(tmp_path)
    summary = run_vision_language_pretraining(_compose(training_overrides(tmp_path, ["training.mixed_precision=bf16"])))
    assert summary["mixed_precision"] == "bf16" and summary["steps"] == 4
    assert all(torch.isfinite(torch.tensor([loss for _, loss in summary["train_loss"]])))
    weights = load_file(str(Path(summary["output_model"]) / "model.safetensors"))
    assert {tensor.dtype for tensor in weights.values() if tensor.is_floating_point()} == {torch.float32}


@pytest.mark.slow
def test_a_checkpoint_is_not_resumed_over_another_curriculum_or_starting_model(tmp_path):
    """The resume key covers the data, not only the configuration: after the curriculum store is
    regenerated (same settings, other records) or the starting model is retrained, training starts
    afresh instead of restoring the old run's final checkpoint; unchanged inputs resume it."""
    write_training_data(tmp_path)
    cfg = training_overrides(tmp_path, ["training.vision_pretraining.steps=1"])
    first = run_vision_language_pretraining(_compose(cfg))
    assert first["resumed_from_step"] == 0
    assert run_vision_language_pretraining(_compose(cfg))["resumed_from_step"] == first["steps"]

    store = tmp_path / "curriculum" / "tabular_annotate_rules" / "records.jsonl"
    store.write_text(store.read_text().replace("drusen are present", "drusen are seen"))
    assert run_vision_language_pretraining(_compose(cfg))["resumed_from_step"] == 0

    part_2 = training_overrides(tmp_path, ["pretrained_models=retinavlm_base_192px", *part_2_overrides()])
    assert run_vision_language_pretraining(_compose(part_2))["resumed_from_step"] == 0
    assert run_vision_language_pretraining(_compose(part_2))["resumed_from_step"] > 0
    run_vision_language_pretraining(_compose(training_overrides(tmp_path, ["training.vision_pretraining.steps=2"])))
    assert run_vision_language_pretraining(_compose(part_2))["resumed_from_step"] == 0


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(model_dir / "model.safetensors"))


@pytest.mark.slow
def test_run_killed_mid_training_resumes_to_the_same_weights(tmp_path):
    extra = ["training.max_steps=8", "training.checkpoint_every=3", "training.eval_every=100",
             "training.keep_checkpoints=10"]
    reference_root, killed_root = tmp_path / "reference", tmp_path / "killed"
    for root in (reference_root, killed_root):
        write_training_data(root)
    reference = run_vision_language_pretraining(_compose(training_overrides(reference_root, extra)))

    command = [sys.executable, str(REPO / "run" / "vision_language_pretraining.py"),
               *training_overrides(killed_root, extra)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    checkpoints = killed_root / "outputs" / "checkpoints" / "retinavlm_base_192px"
    deadline = time.time() + 240
    while not list(checkpoints.glob("*/step_00000003/trainer_state.json")):
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    final = killed_root / "outputs" / "models" / "retinavlm_base_192px"
    assert not final.exists(), "the run finished before it was killed"

    resumed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((killed_root / "run" / "training_summary.json").read_text())
    assert summary["resumed_from_step"] >= 3 and summary["steps"] == 8
    expected, actual = _weights(Path(reference["output_model"])), _weights(final)
    assert expected.keys() == actual.keys()
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.slow
def test_accelerate_launch_two_cpu_processes(tmp_path):
    write_training_data(tmp_path)
    # The venv's own CLI: the suite may run without the venv on PATH (e.g. .venv/bin/python -m pytest).
    command = [str(Path(sys.executable).with_name("accelerate")), "launch", "--multi_gpu", "--num_processes", "2",
               str(REPO / "run" / "vision_language_pretraining.py"), *training_overrides(tmp_path)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "outputs" / "models" / "retinavlm_base_192px" / "model.safetensors").is_file()
    summary = json.loads((tmp_path / "run" / "training_summary.json").read_text())
    assert summary["steps"] == 4


@pytest.mark.parametrize("stage,part,steps", [("curriculum_part_1_introduction_to_retina", "curriculum_part_1", 800),
                                               ("curriculum_part_2_advanced_retinal_specialism", "curriculum_part_2", 1400)])
def test_a_stage_task_chooses_its_training_unless_the_command_line_does(stage, part, steps):
    # Hydra composes the stage's choice (its defaults list), so the entry script and a Python caller
    # of run_vision_language_pretraining get the same training; `reference` has no stage task.
    def training(*overrides):
        return _compose([f"dataset/task={stage}", *overrides]).training

    def reference(name):
        return _compose(["dataset/task=none", f"training={name}"]).training

    assert training() == reference(part) and training().max_steps == steps != reference("default").max_steps
    assert training().mixed_precision == "auto" and reference("default").mixed_precision == "no"
    assert training("training=debug") == reference("debug")
    assert training("training=lora") == reference("lora")
    assert training("debug=default") == reference("debug")
    tweaked = training("training.max_steps=7")
    assert tweaked.max_steps == 7 and tweaked.lr_schedule == reference(part).lr_schedule
    assert "training" not in _compose([f"dataset/task={stage}"]).dataset.task
