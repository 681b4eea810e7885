"""Phantom generation speed: scans per second with all workers against one worker, same run.

    python benchmarks/phantom_speed.py [num_images] [workers]

Prints wall time, scans/s and the speed-up ratio of the parallel run over the single-process
baseline; the issue's target is 3,000 scans at 208x256 well under a minute on 2 cores.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir

from dataset.phantom import make_dataset

REPO = Path(__file__).resolve().parents[1]


def timed_run(num_images: int, workers: int, folder: Path) -> float:
    overrides = [f"paths.root_dir={REPO}", f"paths.output_dir={folder}", f"run_dir={folder / 'run'}",
                 f"dataset.phantom.output_dir={folder / 'phantom'}",
                 f"dataset.phantom.num_images={num_images}",
                 f"dataset.phantom.num_workers={workers}"]
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose(config_name="make_dataset", overrides=overrides)
    start = time.perf_counter()
    make_dataset(cfg)
    return time.perf_counter() - start


def main() -> None:
    num_images = int(sys.argv[1]) if len(sys.argv) > 1 else 600
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    with tempfile.TemporaryDirectory() as tmp:
        baseline = timed_run(num_images, 1, Path(tmp) / "one")
        parallel = timed_run(num_images, workers, Path(tmp) / "many")
    print(f"{num_images} scans  1 worker: {baseline:.1f} s ({num_images / baseline:.0f} scans/s)")
    print(f"{num_images} scans  {workers} workers: {parallel:.1f} s ({num_images / parallel:.0f} scans/s)")
    print(f"speed-up {baseline / parallel:.2f}x; projected 3,000 scans: {parallel * 3000 / num_images:.0f} s")


if __name__ == "__main__":
    main()
