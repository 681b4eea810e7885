"""A torch dataset of scans from a validated annotation table."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from dataset.images import load_scan
from dataset.transforms import ScanTransform


class ScanDataset(Dataset):
    """Model-ready scans with their annotation row.

    Args:
        table: a table from `dataset.annotations.load_annotations` (needs `image_file`).
        transform: a `ScanTransform`; with augmentation, each item draws from a generator seeded by
            (`seed`, `epoch`, index), so a run is reproducible and resumable.
        seed: base seed for augmentation.
        as_tensor: return a float tensor [1, S, S] in [0, 1] instead of a PIL image.
    """

    def __init__(self, table: pd.DataFrame, transform: ScanTransform, seed: int = 0, as_tensor: bool = True):
        self.table = table.reset_index(drop=True)
        self.transform = transform
        self.seed = seed
        self.as_tensor = as_tensor
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draw (call once per epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.table.iloc[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        image = self.transform(load_scan(row["image_file"]), rng)
        if self.as_tensor:
            image = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)[None]  # [1, S, S]
        return {"image": image, "image_id": row["image_id"], "row": row.to_dict()}
