"""`make trial` (run/trial.py): a change is tried on the validation split with the pipeline's own
commands, from the right part-1 model, and a trial folder is never silently reused for another
change."""

import runpy
import subprocess
from pathlib import Path

import pytest

from dataset.errors import SpecialistVLMError
from dataset.step_runner import ROOT, blueprint_steps, trial_curriculum_steps, trial_seed_steps


@pytest.fixture()
def trial_script(monkeypatch, tmp_path):
    """run/trial.py's functions, run from an empty project folder (tmp_path)."""
    monkeypatch.chdir(tmp_path)
    return runpy.run_path(str(ROOT / "run" / "trial.py"), run_name="trial")


def _args(trial_script, *argv):
    return trial_script["_parser"]().parse_args(["t", *argv])


def test_a_seed_trains_part_2_and_scores_on_the_validation_split(tmp_path):
    blueprint = {step.name: step for step in blueprint_steps()}
    seed_dir, curricula = tmp_path / "seed_1", tmp_path / "curriculum"
    steps = trial_seed_steps(1, seed_dir, curricula, ("staging", "biomarkers"),
                             part_2_train=("training.max_steps=1400",))
    assert [s.name for s in steps] == ["train_part_2", "closed_ended_staging", "closed_ended_biomarkers", "open_ended"]
    own = ("seed=1", f"paths.curriculum_dir={curricula}", f"paths.model_dir={seed_dir / 'models'}")
    assert steps[0].args == (*blueprint["train_part_2"].args, "training.max_steps=1400", *own)
    for step in steps[1:]:
        assert "evaluation.split=validation" in step.args and f"paths.model_dir={seed_dir / 'models'}" in step.args
        assert "evaluation.statistics.n_resamples=200" in step.args
    assert "models=[specialist_v5_192px]" in steps[1].args
    assert "dataset/task=closed_ended_specialist_biomarkers" in steps[2].args
    assert "evaluation.calibration.split=null" in steps[1].args  # raw answers only


def test_a_trial_with_its_own_part_1_trains_and_scores_both_models(tmp_path):
    blueprint = {step.name: step for step in blueprint_steps()}
    steps = trial_seed_steps(0, tmp_path, tmp_path / "c", ("staging",), part_1_train=("training.max_steps=1200",))
    assert [s.name for s in steps] == ["train_part_1", "train_part_2", "closed_ended_staging", "open_ended"]
    assert steps[0].args[:len(blueprint["train_part_1"].args)] == blueprint["train_part_1"].args
    assert "training.max_steps=1200" in steps[0].args and "training.max_steps=1200" not in steps[1].args
    assert "models=[specialist_v5_192px,retinavlm_base_192px]" in steps[2].args
    part_1_alone = trial_seed_steps(0, tmp_path, tmp_path / "c", ("staging",), part_1_train=(), part_2=False)
    assert [s.name for s in part_1_alone] == ["train_part_1", "closed_ended_staging"]
    assert "pretrained_models=retinavlm_base_192px" in part_1_alone[1].args


def test_regenerated_modules_replace_the_pipelines_module_with_the_overrides(tmp_path):
    conclusion = "++dataset.task.curriculum.options.conclusion=true"
    steps = trial_curriculum_steps(tmp_path, ["7_report_writing"], [conclusion],
                                   ["dataset.task.curriculum.num_questions=25"])
    assert [s.name for s in steps] == ["generate_7_report_writing", "generate_part_1"]
    assert "dataset/task/curriculum=7_report_writing" in steps[0].args
    assert "dataset/task/curriculum=all_modules" not in steps[0].args
    assert steps[0].args[-2:] == (conclusion, f"paths.curriculum_dir={tmp_path}")
    assert "dataset/task/curriculum=tabular_annotate_rules" in steps[1].args
    assert trial_curriculum_steps(tmp_path) == []


def test_the_make_target_passes_each_variable_through(tmp_path):
    dry = subprocess.run(["make", "-n", "trial", "NAME=x", "SEEDS=1 2", "TRAIN='a.b=1 c=2'", "PART2=no",
                          "TASKS=staging biomarkers", "SEED_DIR=elsewhere"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.replace("\\\n", " ")
    line = " ".join(next(line for line in dry.splitlines() if "run/trial.py" in line).split())
    assert "x --seeds 1 2 --tasks staging biomarkers --seed-dir elsewhere" in line
    assert "--train 'a.b=1 c=2'" in line and "--no-part-2" in line
    assert "--module" not in line and "--part-1-train" not in line


def test_the_shared_part_1_model_is_copied_once_and_another_source_is_refused(trial_script, tmp_path):
    for seed in (0, 1):
        model = tmp_path / "shared" / f"seed_{seed}" / "models" / "retinavlm_base_192px"
        model.mkdir(parents=True)
        (model / "model.safetensors").write_text(f"seed {seed}")
    (tmp_path / "outputs" / "models" / "retinavlm_base_192px").mkdir(parents=True)
    seed_dir = tmp_path / "outputs" / "trials" / "t" / "seed_0"
    trial_script["_copy_part_1"](0, seed_dir, "shared")  # not the default folder: seed 0 comes from it too
    assert (seed_dir / "models" / "retinavlm_base_192px" / "model.safetensors").read_text() == "seed 0"
    trial_script["_copy_part_1"](0, seed_dir, "shared")  # again: nothing to do
    with pytest.raises(SpecialistVLMError, match="another NAME"):
        trial_script["_copy_part_1"](0, seed_dir, "outputs/seeds")  # the pipeline's model now: refused


def test_a_trial_folder_is_not_reused_for_other_curricula(trial_script, tmp_path):
    with pytest.raises(SpecialistVLMError, match="curricula of `make pipeline`"):
        trial_script["_curricula"](tmp_path / "outputs" / "trials" / "t", _args(trial_script))
    store = tmp_path / "outputs" / "curriculum" / "2_specific_qa"
    store.mkdir(parents=True)
    (store / "records.jsonl").write_text("{}\n")
    trial = tmp_path / "outputs" / "trials" / "t"
    curricula = trial_script["_curricula"](trial, _args(trial_script))
    assert (curricula / "2_specific_qa" / "records.jsonl").read_text() == "{}\n"
    assert trial_script["_curricula"](trial, _args(trial_script, "--train", "x=1")) == curricula  # training only
    with pytest.raises(SpecialistVLMError, match="other curricula"):
        trial_script["_curricula"](trial, _args(trial_script, "--module", "2_specific_qa", "--gen", "a=1"))


def test_overrides_that_start_with_plus_signs_are_arguments_not_options(trial_script):
    args = _args(trial_script, "--part-1-gen", "++dataset.task.curriculum.options.stage_balance=1.0",
                 "dataset.task.curriculum.num_questions=25", "--seeds", "1", "0")
    assert args.part_1_gen == ["++dataset.task.curriculum.options.stage_balance=1.0",
                               "dataset.task.curriculum.num_questions=25"]
    assert args.seeds == [1, 0] and args.part_2 and args.tasks == ["staging", "referral"]
