"""What a pipeline step pays before it computes anything, three ways, measured in one run.

Each "step" is `python run/closed_ended_evaluation.py --help`: the script imports what an
evaluation step imports (torch, transformers, the project), composes nothing and exits. The
script times N such steps:

- `fresh`: N processes that find no bytecode and may not write any (`PYTHONDONTWRITEBYTECODE=1`,
  an empty `PYTHONPYCACHEPREFIX`): every process compiles torch's and transformers' sources, as
  on a machine image that sets PYTHONDONTWRITEBYTECODE (the pipeline before this benchmark);
- `cached`: N processes with the bytecode cached (written by one untimed warm-up run);
- `in_process`: one process running the N commands with `dataset.step_runner` (what
  `make pipeline` does), bytecode cached.

It prints one JSON line per way (seconds, per step) and the ratios to `fresh`. Run it on an
otherwise idle machine: `python benchmarks/step_startup.py --steps 4`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = "run/closed_ended_evaluation.py"
IN_PROCESS = """
from dataset.step_runner import ROOT, run_script
for _ in range({steps}):
    assert run_script(ROOT / {script!r}, ["--help"]) == 0
"""


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4, help="steps per way (default 4)")
    args = parser.parse_args()
    base = {**os.environ, "HF_HUB_OFFLINE": "1"}
    base.pop("PYTHONDONTWRITEBYTECODE", None)
    step = [sys.executable, SCRIPT, "--help"]
    results = {}
    with tempfile.TemporaryDirectory() as empty, tempfile.TemporaryDirectory() as cache:
        fresh = {**base, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": empty}
        results["fresh"] = sum(timed(step, fresh) for _ in range(args.steps))
        cached = {**base, "PYTHONPYCACHEPREFIX": cache}
        timed(step, cached)  # warm-up: writes the bytecode
        results["cached"] = sum(timed(step, cached) for _ in range(args.steps))
        code = IN_PROCESS.format(steps=args.steps, script=SCRIPT)
        results["in_process"] = timed([sys.executable, "-c", code], cached)
    for way, seconds in results.items():
        print(json.dumps({"way": way, "steps": args.steps, "seconds": round(seconds, 1),
                          "per_step": round(seconds / args.steps, 2),
                          "ratio_to_fresh": round(seconds / results["fresh"], 3)}))


if __name__ == "__main__":
    main()
