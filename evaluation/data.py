"""The held-out images an evaluation runs on: the test split, centre-cropped as models see them."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd
from PIL import Image

from dataset.annotations import load_annotations
from dataset.errors import ConfigError
from dataset.images import ImageReadError, load_scan
from dataset.splits import select_rows
from dataset.transforms import build_scan_transform

logger = logging.getLogger(__name__)
UNREADABLE_MODES = ("stop", "skip")


def load_evaluation_table(dataset_cfg: Mapping[str, Any], split: str = "test",
                          max_images: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The validated annotation table and its evaluation split.

    Args:
        dataset_cfg: the `dataset` config (`annotations_file`, `images_dir`).
        split: the split evaluated (the test split by default).
        max_images: keep only the first this many images (debugging and tests; None or 0: all).

    Returns:
        (full table, evaluation rows).

    Raises:
        dataset.annotations.AnnotationError: the table is invalid or has no such split (with
            `dataset.unreadable_images=stop`, the default, also any missing or corrupt image).
        ImageReadError: with `skip`, no image of the split is usable.
    """
    mode = str(dataset_cfg["unreadable_images"])
    if mode not in UNREADABLE_MODES:
        raise ConfigError(f"dataset.unreadable_images={mode!r} is unknown; use one of {', '.join(UNREADABLE_MODES)}")
    table = load_annotations(dataset_cfg["annotations_file"], dataset_cfg["images_dir"],
                             check_images=mode == "stop")
    rows = select_rows(table, split, max_images or None)
    if mode == "skip":
        rows = _usable_rows(rows, dataset_cfg, split)
    logger.info("evaluating %d %s images of %d patients", len(rows), split, rows["patient_id"].nunique())
    return table, rows


def _usable_rows(rows: pd.DataFrame, dataset_cfg: Mapping[str, Any], split: str) -> pd.DataFrame:
    """The rows whose scan loads and is at least the crop (`dataset.unreadable_images=skip`); each
    other row is logged with its reason.

    Raises:
        ImageReadError: no row of the split is usable.
    """
    transform = _transform(dataset_cfg)
    keep, skipped = [], []
    for position, (image_id, path) in enumerate(zip(rows["image_id"].astype(str), rows["image_file"])):
        try:
            transform(load_scan(path))
            keep.append(position)
        except (ImageReadError, OSError, ValueError) as err:
            skipped.append(image_id)
            logger.warning("skipping %s image %s (%s): %s", split, image_id, path,
                           str(err).replace(str(path), "").strip(" :"))
    if not keep:
        raise ImageReadError(f"none of the {len(rows)} {split} images can be used (e.g. {', '.join(skipped[:5])}); "
                             "see the warnings above")
    if skipped:
        logger.warning("dataset.unreadable_images=skip: %d of %d %s images left out: %s", len(skipped), len(rows),
                       split, ", ".join(skipped))
    return rows.iloc[keep].reset_index(drop=True)


def _transform(dataset_cfg: Mapping[str, Any]):
    size = (int(dataset_cfg["image_height"]), int(dataset_cfg["image_width"])) \
        if dataset_cfg.get("image_height") else None
    return build_scan_transform(int(dataset_cfg["crop_size"]), None, image_size=size)


def load_model_images(rows: pd.DataFrame, dataset_cfg: Mapping[str, Any]) -> list[Image.Image]:
    """Each row's scan as the model sees it at evaluation: resized to the stored size, centre crop.

    Raises:
        ImageReadError: any scan is unreadable or smaller than the crop; every such row is named
            (image id and reason), not only the first, since evaluation must not drop test images.
    """
    transform = _transform(dataset_cfg)
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
