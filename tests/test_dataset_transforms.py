"""Scan transforms give model-sized crops; augmentation is seeded, evaluation is deterministic."""

import numpy as np
from helpers_data import write_table
from PIL import Image

from dataset.annotations import load_annotations
from dataset.scan_dataset import ScanDataset
from dataset.transforms import build_scan_transform

AUG = {"rotation_degrees": 5, "crop_jitter": 8, "brightness": 0.2, "contrast": 0.2, "noise_std": 0.02}


def _scan():
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (208, 256), dtype=np.uint8), "L")


def test_eval_transform_is_the_centre_crop():
    out = build_scan_transform(192)(_scan())
    assert out.size == (192, 192)
    assert np.array_equal(np.asarray(out), np.asarray(_scan())[8:200, 32:224])


def test_other_sizes_are_resized_first():
    big = _scan().resize((512, 416))
    out = build_scan_transform(192, image_size=(208, 256))(big)
    assert out.size == (192, 192)


def test_augmentation_is_random_but_seeded():
    transform = build_scan_transform(192, AUG)
    a = np.asarray(transform(_scan(), np.random.default_rng(1)))
    b = np.asarray(transform(_scan(), np.random.default_rng(1)))
    c = np.asarray(transform(_scan(), np.random.default_rng(2)))
    assert a.shape == (192, 192) and np.array_equal(a, b) and not np.array_equal(a, c)


def test_scan_dataset_yields_unit_range_tensors(tmp_path):
    table = load_annotations(write_table(tmp_path))
    item = ScanDataset(table, build_scan_transform(192, AUG), seed=3)[1]
    assert tuple(item["image"].shape) == (1, 192, 192)
    assert 0.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0
    assert item["image_id"] == "img1"
