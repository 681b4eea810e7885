"""Localisation scores against lesion masks, the uniform baseline, and mask cropping."""

import numpy as np
import pytest
from PIL import Image

from dataset.transforms import build_scan_transform
from support.scans import lesion_scan
from saliency.localisation import crop_mask, load_masks, score_map, summarise_scores, upsample_map


def _mask(shape=(10, 10), rows=slice(2, 4), cols=slice(2, 7)):
    mask = np.zeros(shape, bool)
    mask[rows, cols] = True
    return mask


def test_peak_inside_the_mask_hits_and_energy_share_is_the_mass_inside():
    mask = _mask()
    saliency = np.zeros((10, 10))
    saliency[3, 3] = 3.0  # peak, inside
    saliency[8, 8] = 1.0  # outside
    scores = score_map(saliency, mask)
    assert scores["pointing_hit"] == 1.0
    assert scores["energy_share"] == pytest.approx(0.75)
    assert scores["energy_uniform"] == pytest.approx(mask.mean()) == pytest.approx(0.1)
    assert scores["pointing_uniform"] == pytest.approx(0.1)
    assert scores["map_empty"] is False and scores["map_flat"] is False


def test_peak_outside_misses_unless_within_the_tolerance():
    mask = _mask()
    saliency = np.zeros((10, 10))
    saliency[4, 4] = 1.0  # one row below the mask (rows 2-3)
    assert score_map(saliency, mask)["pointing_hit"] == 0.0
    tolerant = score_map(saliency, mask, tolerance_px=1)
    assert tolerant["pointing_hit"] == 1.0
    assert tolerant["pointing_uniform"] > mask.mean()  # the baseline gets the same tolerance


def test_uniform_map_scores_its_baseline_energy_and_has_no_peak():
    mask = _mask()
    scores = score_map(np.ones((10, 10)), mask)
    assert scores["energy_share"] == pytest.approx(scores["energy_uniform"])
    # argmax of a flat map is the first pixel; a pointing score from it would be an artefact.
    assert scores["map_flat"] is True and np.isnan(scores["pointing_hit"])


def test_empty_map_is_flagged_not_scored_and_empty_mask_is_an_error():
    scores = score_map(np.zeros((10, 10)), _mask())
    assert scores["map_empty"] is True and np.isnan(scores["energy_share"])
    with pytest.raises(ValueError, match="empty lesion mask"):
        score_map(np.ones((10, 10)), np.zeros((10, 10), bool))
    with pytest.raises(ValueError, match="shape"):
        score_map(np.ones((5, 5)), _mask())


def test_upsampled_map_keeps_its_peak_cell_and_is_non_negative():
    grid = np.zeros((6, 6), np.float32)
    grid[1, 4] = 1.0
    big = upsample_map(grid, (192, 192))
    assert big.shape == (192, 192) and (big >= 0).all()
    row, col = np.unravel_index(np.argmax(big), big.shape)
    assert (row // 32, col // 32) == (1, 4)


def test_masks_are_cropped_exactly_like_the_scan(tmp_path):
    scan, mask = lesion_scan(3)
    transform = build_scan_transform(192, image_size=(208, 256))
    view = np.asarray(transform(scan))
    cropped = crop_mask(mask, transform)
    assert cropped.shape == view.shape
    assert cropped.any()
    np.testing.assert_array_equal(cropped, view > 200)  # the lesion is the only bright region


def test_masks_of_another_size_are_resized_with_the_scan():
    scan, mask = lesion_scan(4, size=(416, 512))
    transform = build_scan_transform(192, image_size=(208, 256))
    view = np.asarray(transform(scan))
    cropped = crop_mask(mask, transform)
    bright = view > 150
    # Resizing blurs the lesion's edge by a pixel in both; the regions must still coincide.
    assert (cropped & bright).sum() / (cropped | bright).sum() > 0.8
    np.testing.assert_allclose(np.argwhere(cropped).mean(0), np.argwhere(bright).mean(0), atol=1.0)


def test_load_masks_reads_booleans_and_names_a_missing_file(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, drusen=np.eye(3, dtype=np.uint8))
    masks = load_masks(path)
    assert masks["drusen"].dtype == bool and masks["drusen"].sum() == 3
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_masks(tmp_path / "nope.npz")


def test_summary_per_biomarker_against_the_uniform_baseline():
    rows = [
        {"biomarker": "srf", "pointing_hit": 1.0, "pointing_uniform": 0.1, "energy_share": 0.4,
         "energy_uniform": 0.1, "map_empty": False},
        {"biomarker": "srf", "pointing_hit": 0.0, "pointing_uniform": 0.3, "energy_share": 0.2,
         "energy_uniform": 0.3, "map_empty": False},
        {"biomarker": "drusen", "pointing_hit": float("nan"), "pointing_uniform": 0.05,
         "energy_share": float("nan"), "energy_uniform": 0.05, "map_empty": True},
        {"biomarker": "drusen", "pointing_hit": float("nan"), "pointing_uniform": 0.2,
         "energy_share": 0.2, "energy_uniform": 0.2, "map_empty": False, "map_flat": True},
    ]
    summary = summarise_scores(rows).set_index("biomarker")
    assert summary.loc["srf", "phrases"] == 2
    assert summary.loc["srf", "pointing_game"] == pytest.approx(0.5)
    assert summary.loc["srf", "energy_share"] == pytest.approx(0.3)
    assert summary.loc["srf", "energy_uniform"] == pytest.approx(0.2)
    assert summary.loc["srf", "energy_ratio_to_uniform"] == pytest.approx(1.5)
    assert summary.loc["drusen", "empty_maps"] == 1 and summary.loc["drusen", "flat_maps"] == 1
    assert np.isnan(summary.loc["drusen", "pointing_game"])  # no map had a peak
    assert summary.loc["drusen", "energy_ratio_to_uniform"] == pytest.approx(1.0)
    # Baselines are averaged over the same phrases as the scores (paired).
    assert summary.loc["all", "pointing_uniform"] == pytest.approx(0.2)
    assert summary.loc["all", "energy_uniform"] == pytest.approx(0.2)
    assert summary.loc["all", "phrases"] == 4
    # Bootstrap intervals over the phrases: two srf phrases hit 1 and 0, so the interval spans both.
    assert summary.loc["srf", "pointing_game_ci_low"] == 0.0 and summary.loc["srf", "pointing_game_ci_high"] == 1.0
    assert 0.1 <= summary.loc["srf", "pointing_uniform_ci_low"] < summary.loc["srf", "pointing_uniform_ci_high"] <= 0.3
    assert summarise_scores([]).empty


def test_pointing_interval_separates_a_map_that_always_hits_from_uniform():
    rows = [{"biomarker": "srf", "pointing_hit": 1.0, "pointing_uniform": 0.05 + 0.01 * (i % 3), "energy_share": 0.5,
             "energy_uniform": 0.05, "map_empty": False} for i in range(20)]
    summary = summarise_scores(rows).set_index("biomarker")
    assert summary.loc["srf", "pointing_game_ci_low"] == 1.0
    assert summary.loc["srf", "pointing_uniform_ci_high"] <= 0.07


def test_saved_mask_image_round_trip_is_boolean(tmp_path):
    # Masks arrive as uint8 or bool arrays; cropping must return booleans either way.
    scan, mask = lesion_scan(5)
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    cropped = crop_mask(np.asarray(Image.open(tmp_path / "mask.png")) > 0, build_scan_transform(192))
    assert cropped.dtype == bool and cropped.shape == (192, 192)
