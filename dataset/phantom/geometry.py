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
# Kept clear at each edge of the visible field: training crops jitter by up to 8 of 256 columns.
VISIBLE_MARGIN_UM = 240.0


@dataclass(frozen=True)
class ScanGeometry:
    """Pixel grid of one B-scan and its physical scale.

    Attributes:
        height, width: image size in pixels.
        depth_um: micrometres per pixel along depth (rows).
        lateral_um: micrometres per pixel across the scan (columns).
        visible_width: width in pixels of the centred field the model sees (its square crop);
            lesions are placed inside it, so every label describes something in view. None:
            the whole scan.
    """

    height: int
    width: int
    depth_um: float
    lateral_um: float
    visible_width: int | None = None

    @classmethod
    def from_size(cls, height: int, width: int, visible_width: int | None = None) -> ScanGeometry:
        """Geometry of a `height` x `width` scan covering the reference field of view, of
        which the centred `visible_width` columns are seen by the model."""
        scale = load_knowledge().imaging["um_per_pixel_full"]
        if visible_width is not None and not 0 < int(visible_width) <= width:
            raise ValueError(f"visible_width must be in (0, {width}], got {visible_width}")
        return cls(height=height, width=width,
                   depth_um=float(scale["depth"]) * FULL_HEIGHT / height,
                   lateral_um=float(scale["lateral"]) * FULL_WIDTH / width,
                   visible_width=None if visible_width is None else int(visible_width))

    def visible_half_um(self) -> float:
        """Half the visible field's width in um, less a margin for crop jitter."""
        if self.visible_width is None:
            return (self.width / 2 - 4) * self.lateral_um
        return self.visible_width / 2 * self.lateral_um - VISIBLE_MARGIN_UM

    def keep_visible(self, cols: float | np.ndarray, half_width_um: float = 0.0) -> float | np.ndarray:
        """Lateral centres moved just enough that a lesion of half width `half_width_um` lies
        inside the visible field (its centre always does, however wide the lesion)."""
        reach = max(self.cols(self.visible_half_um() - half_width_um), 0.0)
        return np.clip(cols, self.width / 2 - reach, self.width / 2 + reach)

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
    lo = max(FOVEAL_RADIUS_UM + 250.0, half_width_um * 0.8)
    hi = max(lo + 100.0, min(geom.visible_half_um() - half_width_um * 0.5, 2600.0))
    return float(geom.keep_visible(fovea_col + side * geom.cols(rng.uniform(lo, hi)), half_width_um))


def diffuse_centres(count: int, eye: str, fovea_col: float, geom: ScanGeometry,
                    rng: np.random.Generator) -> np.ndarray:
    """`count` (>= 3) centres spread over both sides of the fovea."""
    places = ["nasal", "temporal", "foveal"]
    spots = places + list(rng.choice(places, max(0, count - 3)))
    return np.array([lesion_centre(s, eye, fovea_col, geom, rng) for s in spots[:max(count, 3)]])

