"""Checks of the phantom generator's settings before any scan is drawn, so a bad value stops
`run/make_dataset.py` with one line naming the setting instead of failing deep in NumPy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dataset.errors import ConfigError
from dataset.setting_checks import check_number


def check_phantom_settings(dataset_cfg: Mapping[str, Any], samples_only: bool = False) -> None:
    """Check `dataset.image_height/image_width/crop_size` and `dataset.phantom.*`.

    Args:
        dataset_cfg: the `dataset` config node.
        samples_only: only the shipped samples are written (`num_images` is not used).

    Raises:
        ConfigError: the first bad setting, named with its allowed values.
    """
    crop = check_number(dataset_cfg.get("crop_size", 1), "dataset.crop_size", integer=True, low=1)
    for side in ("image_height", "image_width"):
        check_number(dataset_cfg.get(side), f"dataset.{side}", integer=True, low=crop)
    phantom = dataset_cfg.get("phantom") or {}
    if not samples_only:
        check_number(phantom.get("num_images"), "dataset.phantom.num_images", integer=True, low=1)
    check_number(phantom.get("seed", 0), "dataset.phantom.seed", integer=True)
    for key in ("two_eye_fraction", "report_without_stage_fraction"):
        if key in phantom:
            check_number(phantom[key], f"dataset.phantom.{key}", low=0.0, high=1.0)
    if phantom.get("num_workers") is not None:
        check_number(phantom["num_workers"], "dataset.phantom.num_workers", integer=True, low=1)
    visits = phantom.get("visits_per_eye")
    if visits is not None:
        if isinstance(visits, (str, bytes)) or not hasattr(visits, "__len__") or len(visits) != 2:
            raise ConfigError(f"dataset.phantom.visits_per_eye must be [min, max], got {visits!r}")
        low = check_number(visits[0], "dataset.phantom.visits_per_eye[0]", integer=True, low=1)
        check_number(visits[1], "dataset.phantom.visits_per_eye[1]", integer=True, low=low)
    for key in ("stage_prevalence", "split_fractions"):
        values = phantom.get(key)
        if values is None:
            continue
        if not isinstance(values, Mapping):
            raise ConfigError(f"dataset.phantom.{key} must map names to shares, got {values!r}")
        for name, share in values.items():
            check_number(share, f"dataset.phantom.{key}.{name}", low=0.0)
