"""Vision pretraining alone, several settings x seeds: what the tower's features give a linear read-out.

Builds the default VLM (`pretrained_models=new`), runs the pipeline's vision pretraining stage on
the training split with the given overrides, and scores the temporary head on the validation
split: six-class stage accuracy and each biomarker's balanced accuracy. No curriculum training;
one 800-step run takes ~1.5-2 min on 2 idle cores. Needs the phantom (`make pipeline`, or
`python run/make_dataset.py`). Writes one JSON line per run to --out.

    python benchmarks/vision_pretraining_sweep.py --seeds 0 1 2 \\
        --setting default= --setting balance=training.vision_pretraining.biomarker_balance=0.5
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def run_one(overrides: list[str], seed: int) -> dict:
    from hydra import compose, initialize_config_dir

    from dataset.annotations import load_annotations
    from models import build_vlm
    from models.training.vision_pretraining import maybe_pretrain_vision

    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose(config_name="vision_language_pretraining",
                      overrides=[f"paths.root_dir={REPO}", "run_dir=/tmp/vision_sweep", "dataset=retina",
                                 "pretrained_models=new", f"seed={seed}", *overrides])
    table = load_annotations(cfg.dataset.annotations_file, cfg.dataset.images_dir)
    torch.manual_seed(seed)
    model, processor = build_vlm(cfg.model, ["There is drusen in this OCT scan."] * 20)
    summary = maybe_pretrain_vision(cfg, model, processor, table, resuming=False)
    return {"seed": seed, "steps": summary["steps"], "wall_time_s": summary["wall_time_s"], **summary["held_out"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--setting", action="append", required=True,
                        help="NAME=override[,override...] (an empty list is the default)")
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "vision_sweep.jsonl")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for setting in args.setting:
        name, _, spec = setting.partition("=")
        overrides = [o for o in spec.split(",") if o]
        accuracies = []
        for seed in args.seeds:
            row = {"setting": name, "overrides": overrides, **run_one(overrides, seed)}
            accuracies.append(row["stage_accuracy"])
            with args.out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
        spread = np.std(accuracies, ddof=1) if len(accuracies) > 1 else 0.0
        print(f"{name}: stage accuracy {np.mean(accuracies):.3f} +- {spread:.3f}", flush=True)


if __name__ == "__main__":
    main()
