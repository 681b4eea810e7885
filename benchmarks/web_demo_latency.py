"""Seconds from upload to report and to all outputs in the web demo, alone and with 4 sessions at once.

    python benchmarks/web_demo_latency.py                      # the registry's trained specialist
    python benchmarks/web_demo_latency.py --repeats 3 -- paths.output_dir=/tmp/other/outputs

Starts `run/demos/web_demo.py paths=template` in a subprocess on a free loopback port and talks to it
with `gradio_client`, which uploads the scan and listens to the same event stream as the page: the
clock starts before the upload and stops when the update carrying the report arrives, then when the
last update (stage, referral, biomarkers, Grad-CAM, JSON) arrives. Measured: the first run (it loads
the model), `--repeats` warm runs of one session, then `--sessions` sessions submitted at once (the
page's queue serves model events one at a time, so later sessions wait). A comparison model, if any,
is left out (`model_b=""`) unless --compare names one. Timings depend on the load of the machine:
note what else ran beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

ROOT = Path(__file__).resolve().parents[1]
SCAN = ROOT / "dataset" / "processed_images" / "phantom_00006_late_wet_active.png"
SCAN_PATH = SCAN  # --scan changes it


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(overrides: list[str], log: Path) -> tuple[subprocess.Popen, str]:
    """The demo in a subprocess; returns (process, url) once it answers."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    command = [sys.executable, "run/demos/web_demo.py", "paths=template", f"demo.port={port}", *overrides]
    process = subprocess.Popen(command, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT)
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"the demo exited:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return process, url
        except OSError:
            time.sleep(1)
    process.kill()
    raise RuntimeError("the demo did not start in 300 s")


def one_session(url: str, model: str, compare: str, downloads: str) -> dict[str, float | str]:
    """Upload SCAN, run, and time the report and the last update (files the page sends go to `downloads`)."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, download_files=downloads)
    start = time.perf_counter()
    job = client.submit([handle_file(str(SCAN_PATH))], [], model, compare, api_name="/analyse")
    report_s = None
    for update in job:
        report = update[2] if isinstance(update, (list, tuple)) and len(update) > 2 else None
        if report_s is None and isinstance(report, str) and report.startswith("["):
            report_s = time.perf_counter() - start
    final = job.outputs()[-1]
    all_s = time.perf_counter() - start
    results = json.loads(Path(final[10]).read_text()) if final[10] else {}
    return {"report_s": report_s, "all_s": all_s, "status": final[0], "report": final[2],
            "phrases": len(results.get("phrases", []))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="specialist_v5_192px")
    parser.add_argument("--compare", default="", help="a second registry model run side by side")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--scan", type=Path, default=SCAN, help="the scan every session uploads")
    parser.add_argument("--log", type=Path, default=Path("/tmp/web_demo_latency.log"))
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for run/demos/web_demo.py")
    args = parser.parse_args()
    global SCAN_PATH
    SCAN_PATH = args.scan.resolve()

    process, url = start_app(args.overrides, args.log)
    # The client's copies of the page's files (crops, overlays, JSON) go to a folder removed at the end.
    downloads = tempfile.TemporaryDirectory(prefix="web_demo_latency_")
    try:
        first = one_session(url, args.model, args.compare, downloads.name)
        warm = [one_session(url, args.model, args.compare, downloads.name) for _ in range(args.repeats)]
        start = time.perf_counter()
        with ThreadPoolExecutor(args.sessions) as pool:
            together = list(pool.map(lambda _: one_session(url, args.model, args.compare, downloads.name),
                                     range(args.sessions)))
        together_wall = time.perf_counter() - start
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        downloads.cleanup()
    summary = {
        "model": args.model, "compare": args.compare or None,
        "torch_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "cpus": os.cpu_count(), "load_average_at_end": os.getloadavg(),
        "first_run": first,
        "warm_median": {k: statistics.median(r[k] for r in warm) for k in ("report_s", "all_s")},
        "warm_runs": warm,
        "concurrent": {"sessions": args.sessions, "wall_s": together_wall,
                       "all_done": all(str(r["status"]).startswith("Done") for r in together),
                       "per_session_sorted": sorted(together, key=lambda r: r["all_s"])},
    }
    print(json.dumps(summary, indent=2, default=str))


if __name__ == "__main__":
    main()
