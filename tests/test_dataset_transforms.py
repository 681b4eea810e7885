"""Scan transforms give model-sized crops; augmentation is seeded, evaluation is deterministic."""

import numpy as np
from PIL import Image
from support.tables import write_table

from dataset.annotations import load_annotations
from dataset.images import load_scan
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


def test_scan_dataset_serves_transformed_scans_in_row_order(tmp_path):
    table = load_annotations(write_table(tmp_path))
    transform = build_scan_transform(192, AUG)
    scans = ScanDataset(table, transform)
    assert len(scans) == len(table)
    view = scans.view(1, np.random.default_rng(3))
    assert view.size == (192, 192) and view.mode == "L"
    expected = transform(load_scan(table["image_file"].iloc[1]), np.random.default_rng(3))
    assert np.array_equal(np.asarray(view), np.asarray(expected))
    # One generator drives the views in the order they are asked for.
    rng, again = np.random.default_rng(5), np.random.default_rng(5)
    views = scans.views([2, 0], rng)
    assert all(np.array_equal(np.asarray(v), np.asarray(scans.view(i, again))) for v, i in zip(views, [2, 0]))
