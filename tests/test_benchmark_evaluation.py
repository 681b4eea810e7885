"""The evaluation benchmark runs end to end on a tiny model and prints each ratio it promises."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "evaluation_modes.py"


@pytest.mark.slow
def test_the_evaluation_benchmark_times_each_mode_against_its_baseline():
    done = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--images", "4", "--batch-size", "2",
                           "--max-new-tokens", "4", "--compare-autocast"],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for line in ("likelihood", "shared image pass", "batched", "staging option scores", "report generation"):
        assert re.search(rf"{line} .* images/s +x\d+\.\d+", out), (line, out)
    assert "10 biomarker questions" in out
    same = re.search(r"same option chosen for ([\d.]+)% of images", out)
    assert same and 0 <= float(same.group(1)) <= 100
