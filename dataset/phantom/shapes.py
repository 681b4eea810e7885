"""Small shape helpers shared by the lesion painters: lateral profiles and textured fills."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dataset.phantom.scene import Scene

# A finisher runs after every lesion has edited the layer thicknesses and the layers are stacked:
# it paints the lesion and records its mask using the final layer positions.
Finisher = Callable[[Scene], None]


def dome(cols: np.ndarray, centre: float, half_width: float, height: float, power: float = 0.6) -> np.ndarray:
    """(W,) dome-shaped profile: `height` at `centre`, zero beyond `half_width` columns."""
    inside = np.clip(1.0 - ((cols - centre) / max(half_width, 0.5)) ** 2, 0.0, 1.0)
    return (height * inside ** power).astype(np.float32)


def plateau(cols: np.ndarray, centre: float, half_width: float, height: float, edge: float) -> np.ndarray:
    """(W,) flat-topped profile with smooth shoulders `edge` columns wide."""
    distance = np.abs(cols - centre) - (half_width - edge)
    ramp = np.clip(1.0 - distance / max(edge, 0.5), 0.0, 1.0)
    return (height * (0.5 - 0.5 * np.cos(np.pi * ramp))).astype(np.float32)


def columns_of(profile: np.ndarray, threshold: float = 0.3) -> np.ndarray:
    """(W,) bool columns where a profile is thick enough to count as lesion."""
    cols = profile > threshold
    if not cols.any():
        cols[int(np.argmax(profile))] = True
    return cols


def wobble(width: int, rng: np.random.Generator, amplitude: float, smooth_cols: float) -> np.ndarray:
    """(W,) smooth random multiplicative irregularity around 1."""
    spacing = max(smooth_cols, 1.0)
    knots = max(2, int(width / spacing) + 2)
    values = rng.uniform(-amplitude, amplitude, knots)
    line = np.interp(np.arange(width), np.linspace(0, width - 1, knots), values)
    box = max(int(spacing), 1)  # smooth the corners of the piecewise-linear line
    line = np.convolve(np.pad(line, box, mode="edge"), np.ones(box) / box, "same")[box:-box]
    return (1.0 + line).astype(np.float32)


def upsample2(coarse: np.ndarray) -> np.ndarray:
    """Bilinear 2x upsampling by averaging neighbours (much cheaper than `ndimage.zoom`)."""
    rows = np.empty((coarse.shape[0] * 2 - 1, coarse.shape[1]), coarse.dtype)
    rows[0::2] = coarse
    rows[1::2] = 0.5 * (coarse[:-1] + coarse[1:])
    both = np.empty((rows.shape[0], coarse.shape[1] * 2 - 1), coarse.dtype)
    both[:, 0::2] = rows
    both[:, 1::2] = 0.5 * (rows[:, :-1] + rows[:, 1:])
    return both


def blotches(scene: Scene, rng: np.random.Generator, base: float, amplitude: float) -> np.ndarray:
    """(H, W) heterogeneous reflectivity: `base` +- `amplitude` in blobs about 2 pixels across."""
    height, width = scene.geom.height, scene.geom.width
    coarse = rng.uniform(-amplitude, amplitude, (height // 2 + 2, width // 2 + 2)).astype(np.float32)
    return base + upsample2(coarse)[:height, :width]


def ensure_pixel(mask: np.ndarray, row: float, col: float) -> np.ndarray:
    """Make sure a tiny lesion's mask holds at least the pixel at (`row`, `col`)."""
    if not mask.any():
        r = int(np.clip(round(float(row)), 0, mask.shape[0] - 1))
        c = int(np.clip(round(float(col)), 0, mask.shape[1] - 1))
        mask[r, c] = True
    return mask
