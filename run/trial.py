"""Try a change on the VALIDATION split before it becomes a default (`make trial`), in one process.

    python run/trial.py NAME [--seeds 0 1 2] [--module M ...] [--gen OVERRIDE ...]
        [--part-1-gen OVERRIDE ...] [--part-1-train OVERRIDE ...] [--train OVERRIDE ...]
        [--tasks staging referral] [--no-part-2] [--seed-dir outputs/seeds] [--llm rules] [--force]

After `make pipeline` (its phantom and curricula). Into `outputs/trials/NAME/`:
1. `curriculum/`: a copy of the pipeline's curricula with each `--module` regenerated with the
   `--gen` overrides and, with `--part-1-gen`, part 1's module with those
   (`dataset.step_runner.trial_curriculum_steps`). Made once per trial: a rerun with other
   curriculum settings is refused (use another NAME).
2. Per seed, `seed_<s>/` (`dataset.step_runner.trial_seed_steps`): part 1 trained here when
   `--part-1-gen` or `--part-1-train` is given, else that seed's shared part-1 model copied from
   `--seed-dir` (seed 0's from `outputs/models` when the seed folder is the default and the
   pipeline made it; one that is missing is trained there first, as `make part1` does); part 2
   with the `--train` overrides; the closed-ended `--tasks` and the reports, on the validation
   split with raw answers. Stamps as in `make pipeline`: a step whose settings changed runs again,
   with every step after it.
3. The mean and spread over the seeds: `seed_summary.{md,csv}`.
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

from dataset.errors import SpecialistVLMError
from dataset.step_runner import (PART_1_MODEL, ROOT, StepFailedError, run_script, run_steps, seed_steps,
                                 trial_curriculum_steps, trial_seed_steps)

PIPELINE_CURRICULA, PIPELINE_MODELS, SHARED_SEEDS = Path("outputs/curriculum"), Path("outputs/models"), "outputs/seeds"


def main() -> None:
    args = _parser().parse_args()
    trial = Path("outputs/trials") / args.name
    own_part_1 = bool(args.part_1_gen or args.part_1_train)
    try:
        curricula = _curricula(trial, args)
        for seed in args.seeds:
            print(f"== {args.name} seed {seed}", flush=True)
            seed_dir = trial / f"seed_{seed}"
            if not own_part_1:
                _copy_part_1(seed, seed_dir, args.seed_dir)
            run_steps(trial_seed_steps(seed, seed_dir, curricula, args.tasks,
                                       part_1_train=args.part_1_train if own_part_1 else None,
                                       part_2_train=args.train, part_2=args.part_2), seed_dir, force=args.force)
    except StepFailedError as err:
        sys.stderr.write(f"error: {err}\n")
        sys.exit(err.status)
    except SpecialistVLMError as err:
        sys.stderr.write(f"error: {err}\n")
        sys.exit(2)
    sys.exit(run_script(ROOT / "run" / "summarise_seeds.py", [f"seeds_dir={trial}", f"run_dir={trial}/summary"]))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("name", help="the trial's name: its folder outputs/trials/NAME")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (default 0 1 2)")
    parser.add_argument("--module", nargs="*", default=[], help="part-2 modules to regenerate with --gen")
    parser.add_argument("--gen", nargs="*", default=[], help="Hydra overrides for the regenerated part-2 modules")
    parser.add_argument("--part-1-gen", nargs="*", default=[],
                        help="regenerate part 1's module with these overrides (the trial then trains its own part 1)")
    parser.add_argument("--part-1-train", nargs="*", default=[],
                        help="part 1's training overrides (the trial then trains its own part 1)")
    parser.add_argument("--train", nargs="*", default=[], help="part 2's training overrides")
    parser.add_argument("--tasks", nargs="+", default=["staging", "referral"],
                        help="closed-ended tasks (default: staging referral; add biomarkers)")
    parser.add_argument("--no-part-2", dest="part_2", action="store_false",
                        help="stop after part 1 and score the part-1 model alone")
    parser.add_argument("--seed-dir", default=SHARED_SEEDS,
                        help=f"each seed's shared part-1 model: <dir>/seed_<s>/models (default {SHARED_SEEDS})")
    parser.add_argument("--llm", default="rules", help="curriculum LLM for regenerated modules (default rules)")
    parser.add_argument("--force", action="store_true", help="run every seed's steps again, stamped or not")
    return parser


def _curricula(trial: Path, args: argparse.Namespace) -> Path:
    """The trial's curriculum folder, made once: the pipeline's copied, the named modules regenerated."""
    curricula, stamp = trial / "curriculum", trial / "curriculum.done"
    settings = {"module": args.module, "gen": args.gen, "part_1_gen": args.part_1_gen, "llm": args.llm}
    if stamp.is_file():
        made = _json_or_none(stamp)
        if made is not None and made != settings:
            raise SpecialistVLMError(f"{trial} was made with other curricula ({made}, asked {settings}): "
                                     "give the trial another NAME, or remove that folder")
        print(f"== {args.name} curricula: made before ({stamp})", flush=True)
        return curricula
    if not PIPELINE_CURRICULA.is_dir():
        raise SpecialistVLMError(f"a trial needs the curricula of `make pipeline` ({PIPELINE_CURRICULA}); run it first")
    shutil.rmtree(curricula, ignore_errors=True)
    shutil.copytree(PIPELINE_CURRICULA, curricula)
    for store in [*args.module, *(["tabular_annotate_rules"] if args.part_1_gen else [])]:
        shutil.rmtree(curricula / store, ignore_errors=True)  # regenerated below, not resumed
    run_steps(trial_curriculum_steps(curricula, args.module, args.gen, args.part_1_gen, args.llm), trial, force=True)
    stamp.write_text(json.dumps(settings) + "\n")
    return curricula


def _copy_part_1(seed: int, seed_dir: Path, shared: str) -> None:
    """Put the seed's shared part-1 model into `<seed_dir>/models`, training it first if missing;
    refuse a trial folder whose part-1 model came from elsewhere."""
    source = Path(shared) / f"seed_{seed}" / "models" / PART_1_MODEL
    if seed == 0 and shared == SHARED_SEEDS and (PIPELINE_MODELS / PART_1_MODEL).is_dir():
        source = PIPELINE_MODELS / PART_1_MODEL
    record = seed_dir / "part_1_from.txt"
    if record.is_file():
        if record.read_text().strip() != str(source):
            raise SpecialistVLMError(f"{seed_dir} trained from the part-1 model in {record.read_text().strip()}, "
                                     f"not {source}: give the trial another NAME, or remove that folder")
        return
    if not source.is_dir():
        shared_seed = Path(shared) / f"seed_{seed}"
        run_steps(seed_steps(seed, shared_seed, part_1_only=True), shared_seed)
    shutil.rmtree(seed_dir / "models" / PART_1_MODEL, ignore_errors=True)
    shutil.copytree(source, seed_dir / "models" / PART_1_MODEL)
    record.write_text(f"{source}\n")


def _json_or_none(path: Path) -> dict | None:
    """A stamp's settings; None for the empty stamp an older `make trial` left."""
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


if __name__ == "__main__":
    main()
