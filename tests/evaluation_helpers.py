"""Shared set-up for the evaluation tests: a tiny phantom-like table and composed configs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from hydra import compose, initialize_config_dir

from dataset.clinical import BIOMARKERS
from helpers_data import write_scan

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"

# (findings, split) per image; patients own two images each, so a bootstrap has patients to resample.
_FINDINGS = [
    {},
    {"drusen": 1, "drusen_size": "small", "rpe_elevation": 1},
    {"drusen": 1, "drusen_size": "large", "rpe_elevation": 1},
    {"srf": 1, "srf_volume": "small", "irf": 1, "irf_volume": "small"},
    {"hypertransmission": 1, "hypertransmission_type": "cRORA", "rpe_atrophy": 1, "rpe_atrophy_state": "atrophy"},
    {"shrm": 1, "fibrosis": 1, "hrf": 1},
]


def write_tiny_dataset(folder: Path, images_per_split: int = 6) -> Path:
    """Annotation table with `images_per_split` images in each of train, validation and test (2 per
    patient)."""
    records = []
    for split in ("train", "validation", "test"):
        for i in range(images_per_split):
            image_id = f"{split}{i}"
            write_scan(folder / "images" / f"{image_id}.png", seed=len(records))
            record = {"image_id": image_id, "image_path": f"images/{image_id}.png",
                      "patient_id": f"{split}_p{i // 2}", "eye": "left" if i % 2 else "right", "split": split}
            record.update({b: 0 for b in BIOMARKERS})
            record.update(_FINDINGS[i % len(_FINDINGS)])
            records.append(record)
    table = folder / "annotations.csv"
    pd.DataFrame(records).to_csv(table, index=False)
    return table


def compose_config(config_name: str, tmp_path: Path, overrides: list[str]):
    """Compose a primary config with every directory under `tmp_path`."""
    base = [f"paths.root_dir={ROOT}", f"paths.output_dir={tmp_path / 'outputs'}", f"run_dir={tmp_path / 'run'}"]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name=config_name, overrides=base + overrides)
