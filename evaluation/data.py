"""The held-out images an evaluation runs on: the test split, centre-cropped as models see them."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd
from PIL import Image

from dataset.annotations import load_annotations, split_of
from dataset.images import ImageReadError, load_scan
from dataset.transforms import build_scan_transform

logger = logging.getLogger(__name__)


def load_evaluation_table(dataset_cfg: Mapping[str, Any], split: str = "test",
                          max_images: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The validated annotation table and its evaluation split.

    Args:
        dataset_cfg: the `dataset` config (`annotations_file`, `images_dir`).
        split: the split evaluated (the test split by default).
        max_images: keep only the first this many images (debugging and tests).

    Returns:
        (full table, evaluation rows).

    Raises:
        dataset.annotations.AnnotationError: the table is invalid or has no such split.
    """
    table = load_annotations(dataset_cfg["annotations_file"], dataset_cfg.get("images_dir"))
    rows = split_of(table, split)
    if max_images:
        rows = rows.head(int(max_images)).reset_index(drop=True)
    logger.info("evaluating %d %s images of %d patients", len(rows), split, rows["patient_id"].nunique())
    return table, rows


def load_model_images(rows: pd.DataFrame, dataset_cfg: Mapping[str, Any]) -> list[Image.Image]:
    """Each row's scan as the model sees it at evaluation: resized to the stored size, centre crop.

    Raises:
        ImageReadError: any scan is unreadable or smaller than the crop; every such row is named
            (image id and reason), not only the first, since evaluation must not drop test images.
    """
    size = (int(dataset_cfg["image_height"]), int(dataset_cfg["image_width"])) \
        if dataset_cfg.get("image_height") else None
    transform = build_scan_transform(int(dataset_cfg["crop_size"]), None, image_size=size)
    images, bad = [], []
    ids = rows["image_id"].astype(str) if "image_id" in rows.columns else rows["image_file"].astype(str)
    for image_id, path in zip(ids, rows["image_file"]):
        try:
            images.append(transform(load_scan(path)))
        except (ImageReadError, OSError, ValueError) as err:
            bad.append(f"{image_id} ({path}): {str(err).replace(str(path), '').strip(' :')}")
    if bad:
        raise ImageReadError(f"{len(bad)} of {len(rows)} evaluation images cannot be used; fix or remove these "
                             f"rows of {dataset_cfg.get('annotations_file')}: " + "; ".join(bad))
    return images
