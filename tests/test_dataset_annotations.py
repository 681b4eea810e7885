"""The annotation loader accepts the documented format and rejects bad input by name."""

import numpy as np
import pandas as pd
import pytest
from support.scans import write_scan
from support.tables import write_table

from dataset.annotations import AnnotationError, load_annotations
from dataset.images import load_scan


def test_valid_table_loads_with_derived_labels(tmp_path):
    table = load_annotations(write_table(tmp_path))
    assert len(table) == 6
    assert table["drusen"].dtype == bool
    assert set(table.loc[table["drusen"], "stage"]) == {"intermediate"}
    assert set(table.loc[~table["drusen"], "stage"]) == {"healthy"}
    assert set(table.loc[table["drusen"], "referral"]) == {"routine"}
    assert set(table.loc[~table["drusen"], "referral_treatment"]) == {"no_referral"}


def test_a_reloaded_table_is_read_again_when_it_changed_and_its_images_checked_each_time(tmp_path):
    """One process validates an unchanged table once (make pipeline's steps share it), but never
    serves a stale or shared copy."""
    path = write_table(tmp_path)
    first = load_annotations(path)
    first.loc[0, "stage"] = "late_dry"  # the caller's copy
    assert load_annotations(path).loc[0, "stage"] == "healthy"
    _edit(path, cells={(0, "stage"): "very late"})
    with pytest.raises(AnnotationError, match=r"unknown stage label\(s\) \['very late'\] at line 2"):
        load_annotations(path)
    _edit(path, cells={(0, "stage"): ""})
    assert len(load_annotations(path)) == 6
    (tmp_path / "images" / "img4.png").unlink()
    with pytest.raises(AnnotationError, match=r"line 6 \(img4\): image file not found"):
        load_annotations(path)


def _edit(path, **changes):
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    for (row, column), value in changes.get("cells", {}).items():
        df.loc[row, column] = value
    for column in changes.get("drop", []):
        df = df.drop(columns=column)
    df.to_csv(path, index=False)


def test_missing_column_is_named(tmp_path):
    path = write_table(tmp_path)
    _edit(path, drop=["irf"])
    with pytest.raises(AnnotationError, match=r"missing required column\(s\): irf"):
        load_annotations(path)


def test_unknown_stage_label_names_the_row(tmp_path):
    path = write_table(tmp_path)
    _edit(path, cells={(3, "stage"): "very late"})
    with pytest.raises(AnnotationError, match=r"unknown stage label\(s\) \['very late'\] at line 5 \(img3\)"):
        load_annotations(path)


def test_patient_in_two_splits_is_named(tmp_path):
    path = write_table(tmp_path)
    _edit(path, cells={(3, "split"): "test"})  # img3 belongs to p0, whose other image is in train
    with pytest.raises(AnnotationError, match=r"patient\(s\) p0 appear in more than one split"):
        load_annotations(path)


def test_missing_image_is_named(tmp_path):
    path = write_table(tmp_path)
    (tmp_path / "images" / "img4.png").unlink()
    with pytest.raises(AnnotationError, match=r"line 6 \(img4\): image file not found: .*img4.png"):
        load_annotations(path)


def test_corrupt_image_is_named(tmp_path):
    path = write_table(tmp_path)
    image = tmp_path / "images" / "img2.png"
    image.write_bytes(image.read_bytes()[:60])
    with pytest.raises(AnnotationError, match=r"line 4 \(img2\): corrupt image .*img2.png"):
        load_annotations(path)


def test_bad_biomarker_value_and_attribute_are_named(tmp_path):
    path = write_table(tmp_path)
    _edit(path, cells={(0, "srf"): "maybe", (1, "drusen_size"): "huge"})
    with pytest.raises(AnnotationError) as err:
        load_annotations(path)
    assert "'srf' must be 0/1" in str(err.value) and "line 2 (img0)" in str(err.value)
    assert "drusen_size" in str(err.value) and "huge" in str(err.value)


def test_missing_table_says_how_to_make_one(tmp_path):
    with pytest.raises(AnnotationError, match="run/make_dataset.py"):
        load_annotations(tmp_path / "nope.csv")


@pytest.mark.parametrize("mode", ["L", "I;16", "RGB"])
def test_scans_of_any_depth_load_as_8bit_gray(tmp_path, mode):
    path = write_scan(tmp_path / f"scan_{mode.replace(';', '')}.png", seed=1, mode=mode)
    reference = np.asarray(load_scan(write_scan(tmp_path / "ref.png", seed=1)))
    scan = load_scan(path)
    assert scan.mode == "L" and scan.size == (256, 208)
    assert np.abs(np.asarray(scan, dtype=int) - reference).max() <= 1
