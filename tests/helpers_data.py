"""Tiny, deterministic annotation tables and scans for tests (a few KB)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from dataset.clinical import BIOMARKERS


def write_scan(path: Path, seed: int, size: tuple[int, int] = (208, 256), mode: str = "L") -> Path:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, size=size, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "I;16":
        Image.fromarray(pixels.astype(np.uint16) * 257).save(path)
    elif mode == "RGB":
        Image.fromarray(np.stack([pixels] * 3, axis=-1)).save(path)
    else:
        Image.fromarray(pixels, mode="L").save(path)
    return path


def write_table(folder: Path, rows: int = 6) -> Path:
    """A valid table of `rows` images over three patients (one per split)."""
    records = []
    splits = ["train", "validation", "test"]
    for i in range(rows):
        patient = i % 3
        write_scan(folder / "images" / f"img{i}.png", seed=i)
        record = {"image_id": f"img{i}", "image_path": f"images/img{i}.png", "patient_id": f"p{patient}",
                  "eye": "left" if i % 2 else "right", "split": splits[patient], "age": 70 + i}
        record.update({b: 0 for b in BIOMARKERS})
        if i % 2:
            record.update({"drusen": 1, "drusen_size": "large", "rpe_elevation": 1})
        records.append(record)
    table = folder / "annotations.csv"
    pd.DataFrame(records).to_csv(table, index=False)
    return table
