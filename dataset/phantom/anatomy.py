"""A normal retina: layer thicknesses with a foveal pit, nasal nerve fibre thickening, tilt and
curvature of the scan, and a textured choroid."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from dataset.phantom.geometry import ScanGeometry, nasal_sign
from dataset.phantom.scene import LAYERS, Scene
from dataset.phantom.shapes import upsample2

# Parafoveal thickness (um) of each layer, and how it changes at the foveal centre:
# `pit` layers thin to almost nothing, `centre_extra` is added under the fovea.
BASE_THICKNESS_UM = {
    "nfl": 0.0, "gcl": 40.0, "ipl": 34.0, "inl": 34.0, "opl": 22.0, "onl": 70.0, "elm": 6.0,
    "inner_segments": 22.0, "ez": 13.0, "outer_segments": 24.0, "iz": 11.0, "srf": 0.0, "shrm": 0.0,
    "fibrosis": 0.0, "rpe": 27.0, "sub_rpe": 0.0, "bruch": 7.0, "choroid": 230.0, "sclera": 0.0,
}
PIT_LAYERS = ("nfl", "gcl", "ipl", "inl")
CENTRE_EXTRA_UM = {"onl": 45.0, "outer_segments": 12.0, "opl": -12.0}
NFL_TEMPORAL_UM, NFL_NASAL_UM = 14.0, 52.0


def build_normal_scene(geom: ScanGeometry, eye: str, rng: np.random.Generator,
                       choroid_um: float | None = None) -> Scene:
    """A healthy retina with random pose (depth, tilt, curvature) and anatomy variation.

    Args:
        geom: scan geometry.
        eye: `left` or `right` (sets the nasal side).
        rng: random generator for this scan.
        choroid_um: choroid thickness; random around 230 um when None.

    Returns:
        The scene, ready for lesions to be drawn into it.
    """
    width = geom.width
    cols = np.arange(width, dtype=np.float32)
    fovea_col = width / 2 + rng.uniform(-0.03, 0.03) * width
    offset_um = (cols - fovea_col) * geom.lateral_um
    pit_sigma = rng.uniform(420.0, 560.0)
    pit = np.exp(-0.5 * (offset_um / pit_sigma) ** 2)
    # The ganglion cells displaced from the pit pile up on its rim.
    rim = np.exp(-0.5 * ((np.abs(offset_um) - 1.5 * pit_sigma) / pit_sigma) ** 2)
    nasal_fraction = 1.0 / (1.0 + np.exp(-nasal_sign(eye) * offset_um / 700.0))

    scale = rng.uniform(0.9, 1.1)
    thickness: dict[str, np.ndarray] = {}
    for name in LAYERS:
        um = np.full(width, BASE_THICKNESS_UM[name], np.float32)
        if name == "nfl":
            um = NFL_TEMPORAL_UM + (NFL_NASAL_UM - NFL_TEMPORAL_UM) * nasal_fraction
        if name in PIT_LAYERS:
            um = um * (1.0 - 0.96 * pit)
        if name == "gcl":
            um = um * (1.0 + 0.35 * rim)
        um = um + CENTRE_EXTRA_UM.get(name, 0.0) * pit
        if name not in ("srf", "shrm", "fibrosis", "sub_rpe", "sclera", "choroid"):
            um = um * scale
        thickness[name] = geom.rows(um).astype(np.float32)
    choroid_um = choroid_um if choroid_um is not None else rng.uniform(170.0, 290.0)
    wobble = 1.0 + 0.12 * np.sin(cols / width * rng.uniform(2, 6) + rng.uniform(0, 6.3))
    thickness["choroid"] = geom.rows(choroid_um * wobble).astype(np.float32)

    # Pose: depth of Bruch's membrane, tilt, and the bowl-shaped curvature of the globe.
    centre = (cols - fovea_col) / width
    depth = geom.height * rng.uniform(0.56, 0.66)
    tilt = geom.height * rng.uniform(-0.12, 0.12)
    bowl = geom.height * rng.uniform(0.0, 0.45)
    bruch_row = depth + tilt * centre - bowl * centre ** 2
    return Scene(geom=geom, eye=eye, fovea_col=float(fovea_col), bruch_row=bruch_row.astype(np.float32),
                 thickness=thickness)


def choroid_texture(geom: ScanGeometry, rng: np.random.Generator, first_row: int,
                    last_row: int) -> np.ndarray:
    """(H, W) multiplicative choroid texture: dark vessel lumens in brighter stroma.

    Only rows `first_row`..`last_row` (the choroid) are textured; the noise is drawn at half
    resolution and upsampled, which is four times cheaper and still finer than the vessels.
    """
    texture = np.ones((geom.height, geom.width), np.float32)
    first_row, last_row = max(first_row, 0), min(max(last_row, first_row + 2), geom.height)
    half = ((last_row - first_row + 1) // 2 + 2, geom.width // 2 + 2)
    small = ndimage.gaussian_filter(rng.standard_normal(half, dtype=np.float32),
                                    (geom.rows(9.0), geom.cols(22.0)))
    large = ndimage.gaussian_filter(rng.standard_normal(half, dtype=np.float32),
                                    (geom.rows(18.0), geom.cols(48.0)))
    field = small / (small.std() + 1e-6) + 1.2 * large / (large.std() + 1e-6)
    lumen = np.clip((-field - 0.2) / 1.0, 0.0, 1.0)
    band = upsample2(1.08 - 0.8 * lumen)
    texture[first_row:last_row] = band[: last_row - first_row, : geom.width]
    return texture
