"""`make pipeline` runs its commands in one process (dataset.step_runner): a step run there writes
what the same command writes from a shell, stamps let a rerun skip finished steps whose settings
are unchanged, and a failing step stops the run with the command's own error and exit status."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dataset.step_runner import (ROOT, Step, StepFailedError, blueprint_steps, read_stamp, run_steps, seed_steps,
                                 step_settings)

pytestmark = pytest.mark.slow


def _phantom(tmp_path: Path, name: str, *extra: str) -> Step:
    return Step(name, "run/make_dataset.py", ("dataset.phantom.num_images=6", f"paths.output_dir={tmp_path / name}",
                                              *extra))


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "summary.json"}  # the summary holds the wall time


def test_a_step_in_process_writes_what_its_command_writes(tmp_path):
    step = _phantom(tmp_path, "in_process")
    assert run_steps([step], tmp_path / "pipeline") == ["in_process"]
    shell = _phantom(tmp_path, "shell")
    subprocess.run([sys.executable, str(ROOT / shell.script), *shell.arguments(tmp_path / "pipeline")],
                   check=True, cwd=ROOT, capture_output=True)
    in_process, from_shell = _files(tmp_path / "in_process" / "phantom"), _files(tmp_path / "shell" / "phantom")
    assert len(in_process) > 6 and in_process == from_shell
    assert (tmp_path / "pipeline" / "in_process" / "resolved_config.yaml").exists()


def test_stamped_steps_are_skipped_until_forced(tmp_path, capsys):
    steps = [_phantom(tmp_path, "first"), _phantom(tmp_path, "second")]
    pipeline = tmp_path / "pipeline"
    argv = list(sys.argv)
    assert run_steps(steps, pipeline) == ["first", "second"]
    assert sys.argv == argv
    assert read_stamp(pipeline / "first.done")["seconds"] >= 0
    printed = capsys.readouterr().out
    assert "== first: python run/make_dataset.py dataset.phantom.num_images=6" in printed
    assert f"run_dir={pipeline / 'first'}" in printed

    (pipeline / "second.done").unlink()
    assert run_steps(steps, pipeline) == ["second"]
    assert "== first: done before" in capsys.readouterr().out
    assert run_steps(steps, pipeline, force=True) == ["first", "second"]


def test_a_step_whose_settings_changed_runs_again_with_every_later_step(tmp_path, capsys):
    steps = [_phantom(tmp_path, "first"), _phantom(tmp_path, "second"), _phantom(tmp_path, "third")]
    pipeline = tmp_path / "pipeline"
    run_steps(steps, pipeline)
    stamp = pipeline / "second.done"
    stamp.write_text(json.dumps({**json.loads(stamp.read_text()), "settings": "made with other settings"}))
    capsys.readouterr()
    assert run_steps(steps, pipeline) == ["second", "third"]
    printed = capsys.readouterr().out
    assert "== first: done before" in printed
    assert "== second: stamped, but its settings changed: running it again" in printed
    assert "== third: stamped, but second ran again: running it again" in printed
    assert run_steps(steps, pipeline) == []
    (pipeline / "first.done").write_text("16\n")  # an older version's stamp: seconds, no settings
    assert run_steps(steps, pipeline) == ["first", "second", "third"]


def test_settings_cover_the_config_defaults_not_only_the_command_line(tmp_path):
    root, pipeline = tmp_path / "root", tmp_path / "pipeline"
    shutil.copytree(ROOT / "configs", root / "configs")
    (root / "run").mkdir()
    shutil.copy(ROOT / "run" / "make_dataset.py", root / "run")
    step = _phantom(tmp_path, "phantom")
    before = step_settings(step, pipeline, root)
    assert step_settings(step, pipeline, root) == before
    assert step_settings(Step(step.name, step.script, (*step.args, "seed=5")), pipeline, root) != before
    retina = root / "configs" / "dataset" / "retina.yaml"
    retina.write_text(retina.read_text().replace("late_dry: 0.15", "late_dry: 0.25"))  # a new default
    assert step_settings(step, pipeline, root) != before


def test_a_failing_step_stops_the_run_with_its_error(tmp_path, capfd):
    steps = [_phantom(tmp_path, "first"), _phantom(tmp_path, "broken", "dataset.phantom.num_images=abc"),
             _phantom(tmp_path, "after")]
    pipeline = tmp_path / "pipeline"
    with pytest.raises(StepFailedError) as failure:
        run_steps(steps, pipeline)
    assert (failure.value.step, failure.value.status) == ("broken", 2)
    assert "dataset.phantom.num_images must be a whole number, got 'abc'" in capfd.readouterr().err
    assert sorted(p.name for p in pipeline.glob("*.done")) == ["first.done"]
    assert not (tmp_path / "after").exists()


def test_an_override_hydra_cannot_compose_fails_in_the_steps_own_words(tmp_path, capfd):
    step = _phantom(tmp_path, "typo", "dataset.phantom.num_imagez=6")
    with pytest.raises(StepFailedError) as failure:
        run_steps([step], tmp_path / "pipeline")
    assert failure.value.step == "typo" and failure.value.status != 0
    err = capfd.readouterr().err
    assert "num_imagez" in err and "Traceback" not in err


def test_the_blueprint_runs_the_seed_readmes_scripts_in_order():
    steps = blueprint_steps("gpt-4o")
    assert [s.name for s in steps][:6] == ["phantom", "curriculum_part_1", "curriculum_part_2", "demo_curriculum",
                                          "train_part_1", "train_part_2"]
    assert steps[-1].name == "saliency" and len({s.name for s in steps}) == len(steps)
    assert all((ROOT / s.script).is_file() for s in steps)
    assert all("model/language_model=gpt-4o" in s.args for s in steps[1:4])


def test_a_seed_trains_and_scores_as_the_pipeline_does_with_its_own_seed_and_model_folder(tmp_path):
    blueprint = {step.name: step for step in blueprint_steps()}
    steps = seed_steps(3, tmp_path / "seed_3")
    assert [s.name for s in steps] == ["train_part_1", "train_part_2", "closed_ended_staging",
                                       "closed_ended_referral", "closed_ended_biomarkers"]
    for step in steps:
        pipeline = blueprint[step.name]
        own = ["seed=3", f"paths.model_dir={tmp_path / 'seed_3' / 'models'}"]
        if step.name.startswith("closed"):
            own.append("evaluation.statistics.n_resamples=200")
        assert (step.script, step.args) == (pipeline.script, (*pipeline.args, *own))
    assert [s.name for s in seed_steps(3, tmp_path / "seed_3", part_1_only=True)] == ["train_part_1"]
