"""Rendering of single phantom scans: lesion placement by eye side, size classes, scaling."""

from __future__ import annotations

import numpy as np
import pytest

from dataset.clinical import BIOMARKERS, STAGES, load_knowledge
from dataset.phantom import ScanGeometry, render_scan, sample_findings
from dataset.phantom.findings import add_implied_findings, empty_findings
from dataset.phantom.geometry import FOVEAL_RADIUS_UM, nasal_sign

SMALL = ScanGeometry.from_size(208, 256)
LARGE = ScanGeometry.from_size(416, 512)

LESIONS = {
    "drusen": dict(drusen=True, drusen_size="large", drusen_count="few", drusen_confluent="false"),
    "ped": dict(ped=True, ped_type="serous", ped_size="medium"),
    "double_layer_sign": dict(double_layer_sign=True, double_layer_sign_extent="short"),
    "hypertransmission": dict(hypertransmission=True, hypertransmission_type="cRORA",
                              hypertransmission_severity="moderate", rpe_atrophy=True,
                              rpe_atrophy_state="atrophy"),
    "srf": dict(srf=True, srf_volume="small"),
    "irf": dict(irf=True, irf_volume="small"),
    "shrm": dict(shrm=True, shrm_amount="small"),
    "fibrosis": dict(fibrosis=True),
    "hrf": dict(hrf=True, hrf_count="few"),
}


def _forced(biomarker: str, location: str) -> dict:
    findings = empty_findings()
    findings.update(LESIONS[biomarker])
    for key in list(LESIONS[biomarker]):
        if key in BIOMARKERS:
            findings[f"{key}_location"] = location
    add_implied_findings(findings)
    return findings


def _offset_um(mask: np.ndarray, fovea_col: float, eye: str, geom: ScanGeometry) -> float:
    """Mask centroid offset from the fovea in um, positive towards nasal."""
    cols = np.nonzero(mask)[1]
    return float((cols.mean() - fovea_col) * geom.lateral_um * nasal_sign(eye))


@pytest.mark.parametrize("eye", ["left", "right"])
@pytest.mark.parametrize("location", ["foveal", "nasal", "temporal"])
@pytest.mark.parametrize("biomarker", sorted(LESIONS))
def test_lesions_sit_where_their_location_says_for_either_eye(biomarker, location, eye):
    for seed in range(3):
        scan = render_scan(_forced(biomarker, location), eye, 80, SMALL, np.random.default_rng(seed))
        offset = _offset_um(scan.masks[biomarker], scan.fovea_col, eye, SMALL)
        if location == "foveal":
            assert abs(offset) < FOVEAL_RADIUS_UM, (seed, offset)
        else:
            assert offset * (1 if location == "nasal" else -1) > 250.0, (seed, offset)


def test_left_eye_nasal_is_image_left():
    scan = render_scan(_forced("srf", "nasal"), "left", 80, SMALL, np.random.default_rng(0))
    assert np.nonzero(scan.masks["srf"])[1].mean() < scan.fovea_col


def test_diffuse_drusen_spread_over_both_sides():
    findings = _forced("drusen", "diffuse")
    findings["drusen_count"] = "many"
    scan = render_scan(findings, "right", 80, SMALL, np.random.default_rng(1))
    cols = np.nonzero(scan.masks["drusen"])[1]
    assert cols.min() < scan.fovea_col < cols.max()


@pytest.mark.parametrize("geom", [SMALL, LARGE], ids=["208x256", "416x512"])
@pytest.mark.parametrize("kind", ["iRORA", "cRORA"])
def test_hypertransmission_width_matches_its_type(kind, geom):
    threshold = float(load_knowledge().imaging["crora_min_width_um"])
    findings = _forced("hypertransmission", "foveal")
    findings["hypertransmission_type"] = kind
    findings["rpe_atrophy_state"] = "atrophy" if kind == "cRORA" else "degeneration"
    for seed in range(5):
        scan = render_scan(findings, "left", 80, geom, np.random.default_rng(seed))
        columns = np.nonzero(scan.masks["hypertransmission"].any(axis=0))[0]
        width_um = (columns.max() - columns.min() + 1) * geom.lateral_um
        assert (width_um >= threshold) == (kind == "cRORA"), (seed, width_um)


def test_drusen_width_follows_the_size_class():
    limits = load_knowledge().imaging["drusen_size_um"]
    widths = {}
    for size in ("small", "large"):
        findings = _forced("drusen", "temporal")
        findings.update(drusen_size=size, drusen_count="one")
        scan = render_scan(findings, "left", 80, LARGE, np.random.default_rng(3))
        columns = np.nonzero(scan.masks["drusen"].any(axis=0))[0]
        widths[size] = (columns.max() - columns.min() + 1) * LARGE.lateral_um
    assert widths["small"] < limits["small_below"] + LARGE.lateral_um
    assert widths["large"] > limits["large_above"] - LARGE.lateral_um


@pytest.mark.parametrize("stage", STAGES)
def test_rendering_is_deterministic_and_scales(stage):
    findings = sample_findings(stage, np.random.default_rng(4))
    first = render_scan(findings, "right", 60, LARGE, np.random.default_rng(9))
    again = render_scan(findings, "right", 60, LARGE, np.random.default_rng(9))
    assert first.image.shape == (416, 512) and first.image.dtype == np.uint8
    assert np.array_equal(first.image, again.image)
    for biomarker in BIOMARKERS:
        assert bool(first.masks[biomarker].any()) == bool(findings[biomarker])


def test_retina_layers_have_the_expected_brightness_order():
    """RPE brightest, outer nuclear layer dark, vitreous darkest, on a healthy scan."""
    from dataset.phantom.anatomy import build_normal_scene

    # render_scan builds its retina first from the same generator state, so the layers match.
    scene = build_normal_scene(SMALL, "left", np.random.default_rng(2))
    scan = render_scan(empty_findings(), "left", 90, SMALL, np.random.default_rng(2))
    tops = scene.tops()
    col = int(scan.fovea_col) + 40  # away from the pit

    def mean_of(layer, below):
        rows = slice(int(np.ceil(tops[layer][col])), int(np.floor(tops[below][col])))
        return scan.image[rows, col - 3: col + 4].mean()

    rpe, onl, nfl = mean_of("rpe", "sub_rpe"), mean_of("onl", "elm"), mean_of("nfl", "gcl")
    vitreous = scan.image[: int(tops["nfl"].min()) - 5].mean()
    assert rpe > nfl > onl > vitreous
