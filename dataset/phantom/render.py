"""Render one phantom B-scan and its lesion masks from a findings row."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from dataset.clinical import BIOMARKERS, is_present
from dataset.phantom import lesions_retina, lesions_rpe
from dataset.phantom.anatomy import build_normal_scene, choroid_texture
from dataset.phantom.geometry import ScanGeometry
from dataset.phantom.scanner import ScannerSettings, acquire

# Drawing order: RPE lifts first (they move everything above), then atrophy, subretinal and
# intraretinal lesions, then small foci and the vitreoretinal interface.
PLANNERS = (
    ("drusen", lesions_rpe.plan_drusen),
    ("ped", lesions_rpe.plan_ped),
    ("double_layer_sign", lesions_rpe.plan_double_layer_sign),
    ("rpe_atrophy", lesions_rpe.plan_atrophy),
    ("srf", lesions_retina.plan_srf),
    ("shrm", lesions_retina.plan_shrm),
    ("fibrosis", lesions_retina.plan_fibrosis),
    ("irf", lesions_retina.plan_irf),
    ("hrf", lesions_retina.plan_hrf),
    ("other_pathology", lesions_retina.plan_other_pathology),
)
CHOROID_DECAY_UM = 200.0


@dataclass
class RenderedScan:
    """One rendered scan: 8-bit image, a bool mask per biomarker id (all ids), fovea column."""

    image: np.ndarray
    masks: dict[str, np.ndarray]
    fovea_col: float


def render_scan(findings: Mapping[str, Any], eye: str, quality: float, geom: ScanGeometry,
                rng: np.random.Generator) -> RenderedScan:
    """Draw a B-scan showing exactly the findings marked present.

    Args:
        findings: annotation columns (biomarker presence and `<id>_<attribute>` values).
        eye: `left` or `right`; sets which image side is nasal.
        quality: scanner quality index 0-100 (speckle, noise, contrast).
        geom: scan geometry.
        rng: the scan's own random generator (determinism per image).

    Returns:
        The image and one mask per biomarker: non-empty exactly for the present ones.

    Raises:
        ValueError: if a present biomarker lacks a mask after drawing (a phantom bug).
    """
    scene = build_normal_scene(geom, eye, rng)
    finishers = []
    for biomarker, plan in PLANNERS:
        if is_present(findings, biomarker):
            finishers.append(plan(scene, findings, rng))
    scene.invalidate()
    for finish in finishers:
        finish(scene)
    if is_present(findings, "rpe_elevation") and scene.lifts:
        lesions_rpe.finish_rpe_elevation(scene)
    tops = scene.tops()
    texture = choroid_texture(geom, rng, int(tops["choroid"].min()), int(tops["sclera"].max()) + 2)
    log_reflectivity = scene.render(texture, geom.rows(CHOROID_DECAY_UM))
    image = acquire(log_reflectivity, ScannerSettings.sample(quality, rng), rng)

    empty = np.zeros((geom.height, geom.width), bool)
    masks = {b: scene.masks.get(b, empty) for b in BIOMARKERS}
    for biomarker in BIOMARKERS:
        if is_present(findings, biomarker) != bool(masks[biomarker].any()):
            raise ValueError(f"phantom drew {biomarker} inconsistently with its label "
                             f"(present={is_present(findings, biomarker)}); findings: {dict(findings)}")
    return RenderedScan(image=image, masks=masks, fovea_col=scene.fovea_col)
