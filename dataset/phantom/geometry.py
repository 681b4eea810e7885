"""Scan geometry: pixel scale from the clinical imaging block, lateral locations and eye side.

Every size in the phantom is given in micrometres and converted here, so the same findings look
the same at 208x256 and at 416x512.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dataset.clinical import load_knowledge

# Reference scan the clinical yaml's um-per-pixel figures describe (Topcon, 416x512).
FULL_HEIGHT, FULL_WIDTH = 416, 512
# A lesion centred within this distance of the fovea is "foveal" (the fovea is ~1.5 mm across).
FOVEAL_RADIUS_UM = 500.0
LOCATIONS = ("foveal", "nasal", "temporal", "diffuse")


@dataclass(frozen=True)
class ScanGeometry:
    """Pixel grid of one B-scan and its physical scale.

    Attributes:
        height, width: image size in pixels.
        depth_um: micrometres per pixel along depth (rows).
        lateral_um: micrometres per pixel across the scan (columns).
    """

    height: int
    width: int
    depth_um: float
    lateral_um: float

    @classmethod
    def from_size(cls, height: int, width: int) -> ScanGeometry:
        """Geometry of a `height` x `width` scan covering the reference field of view."""
        scale = load_knowledge().imaging["um_per_pixel_full"]
        return cls(height=height, width=width,
                   depth_um=float(scale["depth"]) * FULL_HEIGHT / height,
                   lateral_um=float(scale["lateral"]) * FULL_WIDTH / width)

    def rows(self, um: float | np.ndarray) -> float | np.ndarray:
        """Depth distance in pixels."""
        return um / self.depth_um

    def cols(self, um: float | np.ndarray) -> float | np.ndarray:
        """Lateral distance in pixels."""
        return um / self.lateral_um


def nasal_sign(eye: str) -> int:
    """+1 if nasal is image-right (right eye), -1 if image-left (left eye)."""
    if eye not in ("left", "right"):
        raise ValueError(f"eye must be 'left' or 'right', got {eye!r}")
    return 1 if eye == "right" else -1


def lesion_centre(location: str, eye: str, fovea_col: float, geom: ScanGeometry,
                  rng: np.random.Generator, half_width_um: float = 0.0) -> float:
    """A lateral centre (column) for a lesion at `location` relative to the fovea.

    Nasal and temporal centres keep the whole lesion (half width `half_width_um`) on its side
    where the field of view allows, so its mask lies where the report says.
    """
    if location == "foveal":
        return fovea_col + geom.cols(rng.uniform(-0.6, 0.6) * FOVEAL_RADIUS_UM)
    side = nasal_sign(eye) * (1 if location == "nasal" else -1)
    half_field_um = (geom.width / 2 - 4) * geom.lateral_um
    lo = max(FOVEAL_RADIUS_UM + 250.0, half_width_um * 0.8)
    hi = max(lo + 100.0, min(half_field_um - half_width_um * 0.5, 2600.0))
    return fovea_col + side * geom.cols(rng.uniform(lo, hi))


def diffuse_centres(count: int, eye: str, fovea_col: float, geom: ScanGeometry,
                    rng: np.random.Generator) -> np.ndarray:
    """`count` (>= 3) centres spread over both sides of the fovea."""
    places = ["nasal", "temporal", "foveal"]
    spots = places + list(rng.choice(places, max(0, count - 3)))
    return np.array([lesion_centre(s, eye, fovea_col, geom, rng) for s in spots[:max(count, 3)]])

