"""The default trained and evaluated with several seeds (`make seeds`), in one Python process.

    python run/seeds.py [--seeds 0 1 2] [--dir outputs/seeds] [--part-1-only] [--force]

After `make pipeline` (its phantom and curricula): per seed, part 1 and part 2 with that seed and
the closed-ended tasks, into `<dir>/seed_<s>/` (`dataset.step_runner.seed_steps`; stamps as in
`make pipeline`: a step whose settings changed runs again, with every step after it), then the
mean, standard deviation, minimum and maximum of every metric over the seeds in
`<dir>/seed_summary.{md,csv}`. `--part-1-only` trains the part-1 models alone (`make part1`).
"""

import argparse
import sys
from pathlib import Path

from dataset.step_runner import ROOT, StepFailedError, run_script, run_steps, seed_steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (default 0 1 2)")
    parser.add_argument("--dir", default="outputs/seeds", help="seed folders and the summary (default outputs/seeds)")
    parser.add_argument("--part-1-only", action="store_true", help="train the part-1 models only")
    parser.add_argument("--force", action="store_true", help="run every step again, stamped or not")
    args = parser.parse_args()
    try:
        for seed in args.seeds:
            print(f"== seed {seed}", flush=True)
            seed_dir = Path(args.dir) / f"seed_{seed}"
            run_steps(seed_steps(seed, seed_dir, args.part_1_only), seed_dir, force=args.force)
    except StepFailedError as err:
        sys.stderr.write(f"error: {err}\n")
        sys.exit(err.status)
    if not args.part_1_only:
        sys.exit(run_script(ROOT / "run" / "summarise_seeds.py", [f"seeds_dir={args.dir}", f"run_dir={args.dir}/summary"]))


if __name__ == "__main__":
    main()
