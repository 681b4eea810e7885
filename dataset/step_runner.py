"""Run commands of `run/` one after another in one Python process, each leaving a done-stamp.

`make pipeline` is about fifteen commands. As separate processes each pays torch's and
transformers' imports again (15-20 s on 2 cores, three to four minutes in all). `run_steps` runs
each command's script in this process instead: the script's own `main()`, under Hydra, with
`sys.argv` set to the command line. A step therefore composes the same config, writes the same
files and fails with the same one-line error as the command typed in a shell
(tests/test_step_runner.py compares the two).

Each step runs into `<pipeline dir>/<name>/` (its `run_dir`) and, when it succeeds, leaves
`<pipeline dir>/<name>.done`: its seconds and a hash of its settings (the command line and the
config it composes, defaults included). A later run skips a stamped step whose settings are
unchanged; a step whose settings changed (a new default, say) runs again, and so does every step
after it, since they read its outputs. Changes to code are not seen: `--force` reruns everything.
"""

from __future__ import annotations

import gc
import hashlib
import json
import re
import runpy
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from dataset.entry import HYDRA_VERSION_BASE
from dataset.errors import SpecialistVLMError

ROOT = Path(__file__).resolve().parents[1]


class StepFailedError(SpecialistVLMError):
    """A step's command exited with a non-zero status (its own error message came before)."""

    def __init__(self, step: str, status: int):
        super().__init__(f"step {step} failed (exit status {status}); the steps before it are stamped done, "
                         "so a rerun starts from this one")
        self.step, self.status = step, status


@dataclass(frozen=True)
class Step:
    """One command: `python <script> <args> run_dir=<pipeline dir>/<name>`.

    Attributes:
        name: the step's name (its run folder and stamp).
        script: the entry script, relative to the project root (e.g. `run/make_dataset.py`).
        args: its Hydra overrides, as on the command line.
    """

    name: str
    script: str
    args: tuple[str, ...] = ()

    def arguments(self, pipeline_dir: Path) -> list[str]:
        """The command line's arguments, this step's run folder last."""
        return [*self.args, f"run_dir={pipeline_dir / self.name}"]


def run_script(script: str | Path, args: Sequence[str]) -> int:
    """Run `python <script> <args>` in this process and return its exit status.

    The script is executed afresh (as a module named after its file, so Hydra names the job as on the
    command line) and its `main()` called with `sys.argv` set to the command line; `sys.argv` is
    restored afterwards. Entry scripts turn errors into a message on stderr and `SystemExit`
    (`dataset.entry`), which becomes the returned status.
    """
    script = Path(script)
    saved = sys.argv
    sys.argv = [str(script), *args]
    try:
        runpy.run_path(str(script), run_name=script.stem)["main"]()
    except SystemExit as stop:
        return _status(stop.code)
    finally:
        sys.argv = saved
        gc.collect()  # the step's model and data go before the next step loads its own
    return 0


def _status(code: object) -> int:
    """`SystemExit.code` as a process exit status (None is success; a message is status 1)."""
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def step_settings(step: Step, pipeline_dir: Path, root: Path = ROOT) -> str:
    """A hash of what the step's outputs depend on, code aside: its script, its command line and
    the config that command composes (`configs/`, unresolved, so defaults count too).

    The config is composed with Hydra's compose API from the script's `@entry("<config name>")`;
    a script without one is hashed by its command line alone.
    """
    args = step.arguments(pipeline_dir)
    parts = [step.script, *args]
    named = re.search(r'@entry\("([^"]+)"\)', (root / step.script).read_text())
    if named:
        GlobalHydra.instance().clear()  # a step run before leaves Hydra initialised
        try:
            with initialize_config_dir(config_dir=str(root / "configs"), version_base=HYDRA_VERSION_BASE):
                parts.append(OmegaConf.to_yaml(compose(config_name=named.group(1), overrides=args)))
        except Exception:  # noqa: BLE001 - a bad override: the step itself reports it, in its own words
            parts.append("config not composed")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def read_stamp(stamp: Path) -> dict | None:
    """A step's stamp as {seconds, settings}; None if there is none. A stamp of an older version
    (its seconds alone) has settings None, so it never matches."""
    if not stamp.is_file():
        return None
    text = stamp.read_text().strip()
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {"seconds": None, "settings": None}
    if isinstance(value, dict):
        return {"seconds": value.get("seconds"), "settings": value.get("settings")}
    return {"seconds": value if isinstance(value, int) else None, "settings": None}


def run_steps(steps: Sequence[Step], pipeline_dir: str | Path, force: bool = False, root: Path = ROOT) -> list[str]:
    """Run `steps` in order in this process, skipping those stamped done with unchanged settings.

    Each step's command line is printed before it runs, so any step can be rerun by hand.

    Args:
        steps: the commands.
        pipeline_dir: where run folders and stamps go.
        force: remove every step's stamp first and run them all.
        root: the project root the scripts' paths start from.

    Returns:
        The names of the steps that ran (the others were done before).

    Raises:
        StepFailedError: a step exited non-zero; later steps did not run and it left no stamp.
    """
    pipeline_dir = Path(pipeline_dir)
    pipeline_dir.mkdir(parents=True, exist_ok=True)
    if force:
        for step in steps:
            (pipeline_dir / f"{step.name}.done").unlink(missing_ok=True)
    ran: list[str] = []
    for step in steps:
        stamp = pipeline_dir / f"{step.name}.done"
        settings = step_settings(step, pipeline_dir, root)
        done = read_stamp(stamp)
        if done is not None:
            if not ran and done["settings"] == settings:
                print(f"== {step.name}: done before ({stamp})", flush=True)
                continue
            why = f"{ran[0]} ran again" if ran else "its settings changed"
            print(f"== {step.name}: stamped, but {why}: running it again", flush=True)
            stamp.unlink()
        args = step.arguments(pipeline_dir)
        print(f"== {step.name}: python {shlex.join([step.script, *args])}", flush=True)
        started = time.monotonic()
        status = run_script(root / step.script, args)
        if status:
            raise StepFailedError(step.name, status)
        stamp.write_text(json.dumps({"seconds": round(time.monotonic() - started), "settings": settings}) + "\n")
        ran.append(step.name)
    return ran


SPECIALIST, PART_1_MODEL = "specialist_v5_192px", "retinavlm_base_192px"


def blueprint_steps(llm: str = "rules") -> list[Step]:
    """The seed README's command sequence on the embedded phantom (`make pipeline`).

    Args:
        llm: the curriculum's language model (`rules`: offline; `gpt-4o` needs `OPENAI_API_KEY`).
    """
    models = f"models=[{SPECIALIST},{PART_1_MODEL}]"
    specialist = (f"pretrained_models={SPECIALIST}", "dataset=retina")
    closed = "run/closed_ended_evaluation.py"
    return [
        Step("phantom", "run/make_dataset.py"),
        Step("curriculum_part_1", "run/generate_curriculum_part1.py",
             ("dataset=retina", f"model/language_model={llm}", "dataset/task=tabular_annotate",
              "dataset/task/curriculum=tabular_annotate_rules")),
        Step("curriculum_part_2", "run/generate_curriculum_part2.py",
             ("dataset=retina", f"model/language_model={llm}", "dataset/task=specialist_annotate",
              "dataset/task/curriculum=all_modules")),
        Step("demo_curriculum", "run/demos/generate_curriculum.py",
             ("paths=template", f"model/language_model={llm}", "dataset/task=specialist_annotate",
              "dataset/task/curriculum=demo_curriculum")),
        Step("train_part_1", "run/vision_language_pretraining.py",
             ("dataset=retina", "pretrained_models=new", "dataset/task=curriculum_part_1_introduction_to_retina")),
        Step("train_part_2", "run/vision_language_pretraining.py",
             ("dataset=retina", f"pretrained_models={PART_1_MODEL}",
              "dataset/task=curriculum_part_2_advanced_retinal_specialism")),
        *(Step(f"closed_ended_{task}", closed, (*specialist, f"dataset/task=closed_ended_specialist_{task}", models))
          for task in ("staging", "referral", "biomarkers")),
        *(Step(f"two_step_{task}", closed, (*specialist, f"dataset/task=closed_ended_specialist_{task}",
                                            "evaluation.answer_mode=two_step"))
          for task in ("staging", "referral")),
        Step("open_ended", "run/open_ended_evaluation.py", specialist),
        Step("demo_inference", "run/demos/inference.py", ("paths=template",)),
        # Grad-CAM on the config's default layer: the tiny tower's convolutional stem (README).
        Step("saliency", "run/visual_language_gradcam.py",
             ("dataset=retina", "dataset/task=language_visual_attention", f"pretrained_models={SPECIALIST}",
              "dataset.task.report_source=annotation")),
    ]


def seed_steps(seed: int, seed_dir: str | Path, part_1_only: bool = False) -> list[Step]:
    """One seed of `make seeds`: the blueprint's two trainings with `seed=<seed>` and the models in
    `<seed_dir>/models`, then the closed-ended tasks (200 bootstrap resamples: the spread over seeds
    is the figure wanted, not each seed's CI).

    Args:
        seed: the training seed (phantom and curricula stay those of `make pipeline`).
        seed_dir: the seed's folder, `outputs/seeds/seed_<seed>`; the run folders and stamps go there.
        part_1_only: only the part-1 model (`make part1`, which `make trial` shares).
    """
    blueprint = {step.name: step for step in blueprint_steps()}
    own = (f"seed={seed}", f"paths.model_dir={Path(seed_dir) / 'models'}")
    names = ["train_part_1"] if part_1_only else ["train_part_1", "train_part_2", *(
        f"closed_ended_{task}" for task in ("staging", "referral", "biomarkers"))]
    resamples = ("evaluation.statistics.n_resamples=200",)
    return [Step(name, blueprint[name].script,
                 (*blueprint[name].args, *own, *(resamples if name.startswith("closed") else ())))
            for name in names]


VALIDATION = ("evaluation.split=validation",)


def trial_curriculum_steps(curriculum_dir: str | Path, modules: Sequence[str] = (), generate: Sequence[str] = (),
                           part_1_generate: Sequence[str] = (), llm: str = "rules") -> list[Step]:
    """A trial's curricula (`make trial`): regenerate each part-2 module in `modules` with the
    `generate` overrides and, if `part_1_generate` is given, part 1's module with those, into
    `curriculum_dir` (a copy of the pipeline's curricula, which the trial makes first).

    Args:
        curriculum_dir: the trial's curriculum folder.
        modules: part-2 module names (`configs/dataset/task/curriculum/<name>.yaml`).
        generate: Hydra overrides for every module in `modules`.
        part_1_generate: Hydra overrides for part 1's rules module; empty: part 1's store is kept.
        llm: the curriculum's language model.
    """
    pipeline = {step.name: step for step in blueprint_steps(llm)}
    within = (f"paths.curriculum_dir={curriculum_dir}",)
    part_2 = pipeline["curriculum_part_2"]
    steps = [Step(f"generate_{module}", part_2.script,
                  (*_without(part_2.args, "dataset/task/curriculum="), f"dataset/task/curriculum={module}",
                   *generate, *within))
             for module in modules]
    if part_1_generate:
        part_1 = pipeline["curriculum_part_1"]
        steps.append(Step("generate_part_1", part_1.script, (*part_1.args, *part_1_generate, *within)))
    return steps


def trial_seed_steps(seed: int, seed_dir: str | Path, curriculum_dir: str | Path,
                     tasks: Sequence[str] = ("staging", "referral"), part_1_train: Sequence[str] | None = None,
                     part_2_train: Sequence[str] = (), part_2: bool = True) -> list[Step]:
    """One seed of a trial (`make trial`), scored on the VALIDATION split with raw answers.

    Args:
        seed: the training seed.
        seed_dir: `<trial>/seed_<seed>`; run folders, stamps and `models/` go there.
        curriculum_dir: the trial's curricula.
        tasks: closed-ended tasks (`closed_ended_specialist_<task>`).
        part_1_train: part 1's training overrides when the trial trains its own part-1 model
            (an empty sequence: the default part 1 on the trial's curricula); None: the part-1
            model is already in `<seed_dir>/models` (copied there by the caller).
        part_2_train: part 2's training overrides.
        part_2: False stops after part 1 and scores the part-1 model alone.
    """
    pipeline = {step.name: step for step in blueprint_steps()}
    models = Path(seed_dir) / "models"
    own = (f"seed={seed}", f"paths.curriculum_dir={curriculum_dir}", f"paths.model_dir={models}")
    steps = []
    if part_1_train is not None:
        steps.append(Step("train_part_1", pipeline["train_part_1"].script,
                          (*pipeline["train_part_1"].args, *part_1_train, *own)))
    scored = [PART_1_MODEL]
    if part_2:
        steps.append(Step("train_part_2", pipeline["train_part_2"].script,
                          (*pipeline["train_part_2"].args, *part_2_train, *own)))
        scored = [SPECIALIST, PART_1_MODEL] if part_1_train is not None else [SPECIALIST]
    scoring = (*VALIDATION, f"paths.curriculum_dir={curriculum_dir}", "evaluation.statistics.n_resamples=200",
               f"paths.model_dir={models}")
    steps += [Step(f"closed_ended_{task}", "run/closed_ended_evaluation.py",
                   (f"pretrained_models={scored[0]}", f"models=[{','.join(scored)}]", "dataset=retina",
                    f"dataset/task=closed_ended_specialist_{task}", "evaluation.calibration.split=null", *scoring))
              for task in tasks]
    if part_2:
        steps.append(Step("open_ended", pipeline["open_ended"].script, (*pipeline["open_ended"].args, *scoring)))
    return steps


def _without(args: Sequence[str], prefix: str) -> tuple[str, ...]:
    return tuple(arg for arg in args if not arg.startswith(prefix))
