"""Every entry script meets an expected error with one clear line and a non-zero exit, never a
traceback: each case runs the real CLI (a fresh interpreter on run/<script>.py) in a tmp folder."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from support.tiny_models import save_tiny_vlm
from support.training import training_overrides, write_training_data

from curriculum.backends import BackendError, BackendFatalError
from curriculum.generator import GenerationError
from curriculum.modules import CurriculumConfigError
from dataset.annotations import AnnotationError
from dataset.entry import expected_message, is_expected
from dataset.images import ImageReadError
from dataset.secrets import MissingAPIKeyError

ROOT = Path(__file__).resolve().parents[1]
MODEL = "specialist_v5_192px"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Tiny data, curriculum and a trained-format model folder shared by the cases."""
    root = tmp_path_factory.mktemp("entry_errors")
    write_training_data(root)
    save_tiny_vlm(root / "outputs" / "models" / MODEL)
    broken = save_tiny_vlm(root / "broken_models" / MODEL)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:4096])  # a save cut short
    (save_tiny_vlm(root / "weightless_models" / MODEL) / "model.safetensors").unlink()
    (root / "empty.jsonl").write_text("\n")
    llm = root / "llm"
    llm.mkdir()
    (llm / "config.json").write_text('{"model_type": "llama"}')  # no weights, no tokenizer
    (root / "predictions.jsonl").write_text('{"image_id": "scan003", "label": "early"}\n{"image_id": \n')
    scans = root / "scans"
    for i in range(2):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (208, 256), dtype=np.uint8), "L").save(
            scans / f"good{i}.png" if scans.exists() else _mkdir(scans) / f"good{i}.png")
    (scans / "empty.png").write_bytes(b"")
    (scans / "garbage.png").write_bytes(b"not an image at all" * 10)
    Image.new("L", (4, 4), 128).save(scans / "tiny.png")
    empty_store = _mkdir(root / "empty_curriculum" / "tabular_annotate_rules")
    (empty_store / "records.jsonl").write_text("")  # generated, but nothing kept
    (root / "bad_scans").mkdir()
    (root / "bad_scans" / "garbage.jpg").write_bytes(b"\x00" * 50)
    return root


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _common(root: Path) -> list[str]:
    return [o for o in training_overrides(root) if not o.startswith(("training=", "model."))
            if not o.startswith("run_dir=")]


def _demo(root: Path, images: str, *extra: str) -> tuple[str, list[str]]:
    return "demos/inference.py", [*_common(root), f"paths.model_dir={root / 'outputs' / 'models'}",
                                  f"dataset.task.images={root / images}", "demo.max_new_tokens=2",
                                  "dataset.task.questions=[Stage?]", *extra]


CASES = {
    "malformed predictions file": (
        lambda r: ("score_predictions.py", [*_common(r), "dataset/task=closed_ended_specialist_staging",
                                            f"predictions_files=[{r / 'predictions.jsonl'}]"]),
        "predictions.jsonl:2: not valid JSON"),
    "calibrating on the evaluated split": (
        lambda r: ("closed_ended_evaluation.py", [*_common(r), "evaluation.calibration.split=test"]),
        "is the evaluated split"),
    "untrained model evaluated": (
        lambda r: ("closed_ended_evaluation.py", [*_common(r), "pretrained_models=new",
                                                  "evaluation.calibration.split=null"]),
        "fresh untrained build"),
    "api model for grad-cam": (
        lambda r: ("visual_language_gradcam.py", [*_common(r), "dataset/task=language_visual_attention",
                                                  "pretrained_models=gpt-4o"]),
        "Grad-CAM needs a local model"),
    "truncated weights": (
        lambda r: ("closed_ended_evaluation.py", [*_common(r), f"paths.model_dir={r / 'broken_models'}"]),
        "damaged or truncated"),
    "empty curriculum before any training": (
        lambda r: ("vision_language_pretraining.py", [*training_overrides(r, [
            f"paths.curriculum_dir={r / 'empty_curriculum'}",
            "training.vision_pretraining.steps=800"])]),
        "nothing to train on"),
    "incomplete local LLM folder": (
        lambda r: ("generate_curriculum_part2.py", [*_common(r), "dataset/task=specialist_annotate",
                                                    "dataset/task/curriculum=2_specific_qa",
                                                    "model/language_model=llama3-8b_instruct",
                                                    f"model.language_model.path={r / 'llm'}"]),
        "is incomplete: missing the tokenizer"),
    "non-text demo question": (
        lambda r: _demo(r, "scans", "dataset.task.questions=[{Describe: findings}]"),
        "quote these in YAML"),
    "demo folder with nothing readable": (lambda r: _demo(r, "bad_scans"), "could be read"),
    "strict demo with unreadable files": (lambda r: _demo(r, "scans", "demo.strict=true"),
                                          "3 image file(s) could not be read"),
    "api model for training": (
        lambda r: ("vision_language_pretraining.py", training_overrides(r, ["pretrained_models=gpt-4o"])),
        "is an API endpoint (openai); it cannot be trained"),
    "untrained model in the demo": (lambda r: _demo(r, "scans", "pretrained_models=new"), "fresh untrained build"),
    "missing weights": (
        lambda r: ("closed_ended_evaluation.py", [*_common(r), f"paths.model_dir={r / 'weightless_models'}"]),
        "is incomplete: missing the weights"),
    "empty predictions file": (
        lambda r: ("score_predictions.py", [*_common(r), "dataset/task=closed_ended_specialist_staging",
                                            f"predictions_files=[{r / 'empty.jsonl'}]"]),
        "holds no predictions"),
    "a closed-ended task given to training": (
        lambda r: ("vision_language_pretraining.py", training_overrides(r, [
            "dataset/task=closed_ended_specialist_staging"])),
        "dataset.task.output_model is missing from the composed config "
        "(dataset/task=closed_ended_specialist_staging does not set it)"),
    "text where a number belongs": (
        lambda r: ("generate_curriculum_part1.py", [*_common(r), "model/language_model=rules",
                                                    "generation.max_images=abc"]),
        "generation.max_images must be a number, got 'abc'"),
    "zero training steps": (
        lambda r: ("vision_language_pretraining.py", training_overrides(r, ["training.max_steps=0"])),
        "training.max_steps must be >= 1, got 0"),
    "negative stage balance": (
        lambda r: ("vision_language_pretraining.py", training_overrides(r, ["training.stage_balance=-1"])),
        "training.stage_balance must be >= 0"),
    "unknown training precision": (
        lambda r: ("vision_language_pretraining.py", training_overrides(r, ["training.mixed_precision=fp8"])),
        "training.mixed_precision must be one of no, bf16, fp16, auto, got 'fp8'"),
    "make_dataset bad number": (
        lambda r: ("make_dataset.py", [f"paths.output_dir={r / 'made'}", "dataset.phantom.num_images=abc"]),
        "dataset.phantom.num_images must be a whole number, got 'abc'"),
    "make_dataset bad setting": (
        lambda r: ("make_dataset.py", [f"paths.output_dir={r / 'made'}", "dataset.phantom.num_images=5",
                                       "dataset.phantom.visits_per_eye=[3,1]"]),
        "dataset.phantom.visits_per_eye[1] must be >= 3"),
}
if not torch.cuda.is_available():
    CASES["8-bit without CUDA"] = (
        lambda r: ("vision_language_pretraining.py", training_overrides(r, [
            "training.policy.name=adapter", "training.policy.load_in_8bit=true"])),
        "needs a CUDA GPU")


def _run(root: Path, script: str, overrides: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([sys.executable, str(ROOT / "run" / script), *overrides], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_expected_errors_are_one_line_and_exit_non_zero(workspace, case):
    build, message = CASES[case]
    script, overrides = build(workspace)
    done = _run(workspace, script, overrides)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], output[-3000:]
    assert "pip install kernels" not in output, "bitsandbytes' import notice heads the output"


@pytest.mark.parametrize("error", [BackendError, BackendFatalError, GenerationError, CurriculumConfigError,
                                   AnnotationError, ImageReadError, MissingAPIKeyError, FileNotFoundError])
def test_the_projects_errors_are_expected_wherever_raised(error):
    assert is_expected(error("the message names the fix"))


@pytest.mark.parametrize(("error", "overrides", "expected"), [
    (ValueError("invalid literal for int() with base 10: 'abc'"), ["seed=1", "generation.max_images=abc"],
     "generation.max_images must be a number, got 'abc'"),
    (ValueError("could not convert string to float: 'fast'"), ["+model.language_model.timeout_s=fast"],
     "model.language_model.timeout_s must be a number, got 'fast'"),
    (ValueError("invalid literal for int() with base 10: 'x'"), [],
     "a setting that must be a number is not (invalid literal for int() with base 10: 'x')"),
    (ValueError("the message names the fix"), ["a=b"], "the message names the fix"),
])
def test_an_expected_error_names_the_setting_at_fault(error, overrides, expected):
    assert expected_message(error, overrides) == expected


def test_a_key_the_chosen_configs_lack_is_named_with_the_group_given():
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"dataset": {"task": {"name": "closed_ended_specialist_staging"}}})
    OmegaConf.set_struct(cfg, True)
    with pytest.raises(Exception) as caught:
        cfg.dataset.task.output_model  # noqa: B018 - the read is the test
    overrides = ["dataset=retina", "dataset/task=closed_ended_specialist_staging"]
    message = expected_message(caught.value, overrides)
    assert message.startswith("dataset.task.output_model is missing from the composed config "
                              "(dataset/task=closed_ended_specialist_staging does not set it)")


@pytest.mark.slow
@pytest.mark.parametrize("override", ["dataset=retina_easy", "dataset/task=closed_ended_staging",
                                      "training.max_step=3", "pretrained_models=specialist"])
def test_a_name_hydra_cannot_find_is_hydras_message_without_a_traceback(workspace, override):
    done = _run(workspace, "vision_language_pretraining.py", [*training_overrides(workspace), override])
    output = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in output, output[-3000:]
    assert "Could not find" in output or "Could not override" in output, output[-3000:]


def test_a_library_error_raised_elsewhere_is_a_bug():
    try:
        int("not a number")  # a ValueError from outside the project's packages
    except ValueError as err:
        assert not is_expected(err)


@pytest.mark.slow
def test_demo_answers_the_readable_scans_and_lists_the_others(workspace):
    done = _run(workspace, *_demo(workspace, "scans"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stdout.count("Q: Stage?") == 2  # good0.png and good1.png
    listed = [line for line in done.stderr.splitlines() if line.startswith("unreadable: ")]
    assert sorted(Path(line.split(": ")[1]).name for line in listed) == ["empty.png", "garbage.png", "tiny.png"]
    assert any("4x4 px, smaller than the 192x192 crop" in line for line in listed)
