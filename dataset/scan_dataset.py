"""The scans of an annotation table, read once and served through a scan transform."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from PIL import Image

from dataset.images import load_scan
from dataset.transforms import ScanTransform


class ScanDataset:
    """The scans of an annotation table in row order, held in memory, with the transform they go through.

    Vision pretraining (`models.training.vision_pretraining`) revisits every scan hundreds of times,
    so each file is read once (a few thousand small 8-bit scans fit in memory). Augmentation draws
    come from the caller's generator, in the order views are asked for, so one seeded generator
    fixes a whole run.

    Args:
        table: annotation rows (`dataset.annotations.load_annotations`; needs `image_file`).
        transform: a `ScanTransform` (augmented for training, a centre crop for evaluation).

    Raises:
        ImageReadError: a scan is missing or unreadable (the message names the file).
    """

    def __init__(self, table: pd.DataFrame, transform: ScanTransform):
        self.table = table.reset_index(drop=True)
        self.transform = transform
        self.scans = [load_scan(path) for path in self.table["image_file"]]

    def __len__(self) -> int:
        return len(self.scans)

    def view(self, index: int, rng: np.random.Generator | None = None) -> Image.Image:
        """Scan `index` through the transform; its augmentation draws from `rng` (a fresh one if None)."""
        return self.transform(self.scans[index], rng)

    def views(self, indices: Iterable[int], rng: np.random.Generator) -> list[Image.Image]:
        """Scans `indices` in that order, each drawing its augmentation from `rng` in turn."""
        return [self.view(index, rng) for index in indices]
