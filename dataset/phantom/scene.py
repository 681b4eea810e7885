"""The layered retina as per-column thickness profiles, stacked and rendered in log intensity.

A `Scene` holds, for every layer from the nerve fibre layer down to the sclera, a thickness
profile across the scan (micrometres converted to rows) and a reflectivity. Lesions edit these
profiles (a druse thickens the sub-RPE layer, fluid thickens the subretinal space, atrophy thins
the photoreceptor bands) before the layers are stacked up from Bruch's membrane, so the retina
above a lesion moves with it and layer order always holds.

Reflectivities are on a log (display) scale where 0 is the noise floor and 1 the brightest tissue.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dataset.phantom.geometry import ScanGeometry

# Layers from the top (vitreous excluded) with their log reflectivity. The lesion layers
# (subretinal fluid, SHRM, fibrosis, sub-RPE content) have zero thickness in a normal eye.
LAYER_VALUES: dict[str, float] = {
    "nfl": 0.70, "gcl": 0.46, "ipl": 0.56, "inl": 0.27, "opl": 0.54, "onl": 0.20,
    "elm": 0.44, "inner_segments": 0.28, "ez": 0.76, "outer_segments": 0.34, "iz": 0.58,
    "srf": 0.03, "shrm": 0.72, "fibrosis": 0.86, "rpe": 0.90, "sub_rpe": 0.45, "bruch": 0.74,
    "choroid": 0.60, "sclera": 0.40,
}
LAYERS: tuple[str, ...] = tuple(LAYER_VALUES)
VITREOUS_VALUE = 0.03


@dataclass
class Scene:
    """Everything needed to render one scan; lesions edit it in place.

    Attributes:
        geom: pixel grid and scale.
        eye: `left` or `right`.
        fovea_col: column of the foveal centre.
        bruch_row: (W,) row of Bruch's membrane (the fixed floor the retina stacks on).
        thickness: layer -> (W,) thickness in rows.
        value: layer -> scalar or (W,) log reflectivity.
        choroid_boost: (W,) extra choroidal brightness (hypertransmission through lost RPE).
        decay_gain: (W,) multiplier of the depth over which the choroidal signal fades.
        shadow: (H, W) attenuation per row that accumulates with depth (dense bright lesions).
        paint: list of (mask, value) drawn over the stacked layers, in order.
        masks: biomarker id -> (H, W) bool lesion mask.
        lifts: biomarker id -> (W,) sub-RPE lift it caused (drusen, PED, double-layer sign), so
            overlapping lifts can be told apart.
    """

    geom: ScanGeometry
    eye: str
    fovea_col: float
    bruch_row: np.ndarray
    thickness: dict[str, np.ndarray]
    value: dict[str, np.ndarray | float] = field(default_factory=lambda: dict(LAYER_VALUES))
    choroid_boost: np.ndarray | None = None
    decay_gain: np.ndarray | None = None
    shadow: np.ndarray | None = None
    paint: list[tuple[np.ndarray, np.ndarray | float]] = field(default_factory=list)
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    lifts: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        width = self.geom.width
        self.cols = np.arange(width, dtype=np.float32)
        self.rows = np.arange(self.geom.height, dtype=np.float32)[:, None]
        if self.choroid_boost is None:
            self.choroid_boost = np.zeros(width, np.float32)
        if self.decay_gain is None:
            self.decay_gain = np.ones(width, np.float32)
        self._tops: dict[str, np.ndarray] | None = None

    # --- geometry -------------------------------------------------------------------------
    def tops(self) -> dict[str, np.ndarray]:
        """Top row of every layer, stacked upwards from Bruch's membrane (cached)."""
        if self._tops is None:
            tops: dict[str, np.ndarray] = {}
            bruch_index = LAYERS.index("bruch")
            tops["bruch"] = self.bruch_row - self.thickness["bruch"]
            for name in reversed(LAYERS[:bruch_index]):
                below = LAYERS[LAYERS.index(name) + 1]
                tops[name] = tops[below] - self.thickness[name]
            tops["choroid"] = self.bruch_row.copy()
            tops["sclera"] = self.bruch_row + self.thickness["choroid"]
            self._tops = {name: tops[name] for name in LAYERS}
        return self._tops

    def invalidate(self) -> None:
        """Forget cached layer positions after editing thicknesses."""
        self._tops = None

    def bottom(self, layer: str) -> np.ndarray:
        """Bottom row of `layer` (the top of the layer below it)."""
        index = LAYERS.index(layer)
        if layer == "sclera":
            return np.full(self.geom.width, float(self.geom.height), np.float32)
        return self.tops()[LAYERS[index + 1]]

    def band(self, top: np.ndarray, bottom: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
        """(H, W) bool: pixels with centre between `top` and `bottom` rows, in `columns` (bool W)."""
        inside = (self.rows >= top - 0.5) & (self.rows < bottom - 0.5)
        if columns is not None:
            inside &= columns[None, :]
        return inside

    def ellipse(self, row: float, col: float, half_height: float, half_width: float) -> np.ndarray:
        """(H, W) bool filled ellipse (at least its centre pixel)."""
        height, width = self.geom.height, self.geom.width
        inside = np.zeros((height, width), bool)
        # Only the bounding box is evaluated: foci and cysts are a few pixels across.
        r0 = int(np.clip(np.floor(row - half_height), 0, height))
        r1 = int(np.clip(np.ceil(row + half_height) + 1, 0, height))
        c0 = int(np.clip(np.floor(col - half_width), 0, width))
        c1 = int(np.clip(np.ceil(col + half_width) + 1, 0, width))
        inside[r0:r1, c0:c1] = ((self.rows[r0:r1] - row) / max(half_height, 0.5)) ** 2 + \
            ((self.cols[None, c0:c1] - col) / max(half_width, 0.5)) ** 2 <= 1.0
        inside[int(np.clip(round(row), 0, height - 1)), int(np.clip(round(col), 0, width - 1))] = True
        return inside

    def add_mask(self, biomarker: str, mask: np.ndarray) -> None:
        """Union `mask` into the lesion mask of `biomarker`."""
        if biomarker in self.masks:
            self.masks[biomarker] |= mask
        else:
            self.masks[biomarker] = mask.copy()

    def lift_sub_rpe(self, biomarker: str, profile: np.ndarray, content: float) -> None:
        """Lift the RPE off Bruch's membrane by `profile` rows, filled with `content` reflectivity;
        where lifts overlap the taller one wins."""
        taller = profile > self.thickness["sub_rpe"]
        self.thickness["sub_rpe"] = np.maximum(self.thickness["sub_rpe"], profile)
        values = np.broadcast_to(np.asarray(self.value["sub_rpe"], np.float32), profile.shape).copy()
        values[taller] = content
        self.value["sub_rpe"] = values
        self.lifts[biomarker] = np.maximum(self.lifts.get(biomarker, 0.0), profile)

    def owned_columns(self, biomarker: str) -> np.ndarray:
        """(W,) bool columns where `biomarker` holds the tallest sub-RPE lift."""
        own = self.lifts[biomarker]
        others = [p for b, p in self.lifts.items() if b != biomarker]
        columns = own > 0.25
        for other in others:
            columns &= own >= other
        if not columns.any():
            columns[int(np.argmax(own))] = True
        return columns

    def add_shadow(self, mask: np.ndarray, per_row: float) -> None:
        """Dense tissue in `mask` attenuates the signal beneath it by `per_row` per pixel crossed."""
        if self.shadow is None:
            self.shadow = np.zeros((self.geom.height, self.geom.width), np.float32)
        self.shadow += mask * np.float32(per_row)

    # --- rendering ------------------------------------------------------------------------
    def render(self, choroid_texture: np.ndarray, choroid_decay_rows: float) -> np.ndarray:
        """Log reflectivity image (H, W) float32 of the stacked layers and painted lesions.

        Args:
            choroid_texture: (H, W) multiplicative texture for the choroid (vessel lumens dark).
            choroid_decay_rows: e-folding depth of the signal below Bruch's membrane.
        """
        height, width = self.geom.height, self.geom.width
        tops = self.tops()
        # Each layer boundary adds a step of (its value - the value above) to every row below it;
        # writing the steps as increments and summing down the rows renders all layers at once,
        # with partial-volume blending of the boundary row.
        increments = np.zeros((height + 2, width), np.float32)
        increments[0] = VITREOUS_VALUE
        previous: np.ndarray | float = VITREOUS_VALUE
        col_index = np.arange(width)
        for name in LAYERS:
            current = self.value[name]
            if name == "choroid":
                current = current + self.choroid_boost
            delta = np.broadcast_to(np.asarray(current, np.float32) - previous, (width,))
            start = np.clip(tops[name] + 0.5, 0.0, height)
            row = np.floor(start).astype(np.int64)
            frac = (start - row).astype(np.float32)
            increments[row, col_index] += (1.0 - frac) * delta
            increments[row + 1, col_index] += frac * delta
            previous = current
        image = np.cumsum(increments[:height], axis=0)

        # Below Bruch's membrane the signal fades with depth; vessels texture the choroid. Only
        # rows that reach below the membrane somewhere are touched.
        first = int(np.clip(np.floor(tops["choroid"].min()), 0, height))
        below_rows = image[first:]
        depth = np.maximum(self.rows[first:] - tops["choroid"][None, :], 0.0)
        fade = np.exp(-depth / (choroid_decay_rows * self.decay_gain[None, :]))
        textured = (depth > 0) & (self.rows[first:] < tops["sclera"][None, :])
        below_rows *= np.where(textured, choroid_texture[first:] * fade, fade)  # fade is 1 above it

        for mask, value in self.paint:
            np.copyto(image, value, where=mask, casting="unsafe")
        if self.shadow is not None:
            image -= np.cumsum(self.shadow, axis=0) - self.shadow
        return image
