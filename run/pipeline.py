"""The blueprint end to end on the embedded phantom (`make pipeline`), in one Python process.

    python run/pipeline.py [--llm rules] [--force] [--dir outputs/pipeline]

Runs the seed README's commands (`dataset.step_runner.blueprint_steps`; each is printed as it
starts, so any step can be rerun by hand) with torch and transformers imported once, each into
`<dir>/<step>/` with a stamp `<dir>/<step>.done` holding its seconds and a hash of its settings
(command line and composed config); a rerun skips stamped steps whose settings are unchanged and
runs a changed one and every step after it; `--force` runs them all again. Then prints the summary (`run/summarise_pipeline.py`) and writes it
to `<dir>/summary.md`. Exits with the failing step's status.
"""

import argparse
import sys

from dataset.step_runner import ROOT, StepFailedError, blueprint_steps, run_script, run_steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--llm", default="rules", help="curriculum LLM (model/language_model option); default rules")
    parser.add_argument("--force", action="store_true", help="run every step again, stamped or not")
    parser.add_argument("--dir", default="outputs/pipeline", help="run folders and stamps (default outputs/pipeline)")
    args = parser.parse_args()
    try:
        run_steps(blueprint_steps(args.llm), args.dir, force=args.force)
    except StepFailedError as err:
        sys.stderr.write(f"error: {err}\n")
        sys.exit(err.status)
    sys.exit(run_script(ROOT / "run" / "summarise_pipeline.py", [f"pipeline_dir={args.dir}", f"run_dir={args.dir}/summary"]))


if __name__ == "__main__":
    main()
