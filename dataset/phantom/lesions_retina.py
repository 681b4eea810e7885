"""Lesions of the neurosensory retina and subretinal space: fluid (SRF, IRF), SHRM, fibrosis,
hyperreflective foci and other (non-AMD) pathology of the vitreoretinal interface.

Each `plan_*` edits layer thicknesses now and returns a finisher that paints the lesion and
records its mask once the layers are stacked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from dataset.phantom.geometry import diffuse_centres, lesion_centre
from dataset.phantom.scene import Scene
from dataset.phantom.shapes import Finisher, blotches, columns_of, dome, ensure_pixel, wobble

VOLUME_SRF_UM = {"small": ((450, 900), (30, 60)), "moderate": ((900, 1600), (60, 120)),
                 "large": ((1600, 2800), (110, 200))}
AMOUNT_SHRM_UM = {"small": ((250, 500), (35, 60)), "moderate": ((500, 900), (55, 100)),
                  "large": ((900, 1500), (90, 160))}
CYSTS = {"small": ((1, 2), (35, 70)), "moderate": ((3, 5), (55, 120)), "large": ((5, 8), (90, 220))}
HRF_COUNTS = {"one": (1, 1), "few": (2, 4), "many": (5, 11)}


def _subretinal(scene: Scene, layer: str, biomarker: str, width_um: float, height_um: float,
                location: str, rng: np.random.Generator, power: float) -> tuple[np.ndarray, float]:
    geom = scene.geom
    centre = lesion_centre(location, scene.eye, scene.fovea_col, geom, rng, width_um / 2)
    profile = dome(scene.cols, centre, geom.cols(width_um / 2), max(geom.rows(height_um), 1.5), power)
    scene.thickness[layer] = np.maximum(scene.thickness[layer], profile)
    return profile, centre


def _subretinal_finisher(layer: str, below: str, profile: np.ndarray, centre: float, rng: np.random.Generator,
                         brightness: float, spread: float) -> Finisher:
    """Paint bright mottled material filling `layer` (down to the top of `below`), cast a faint
    shadow under it and record its mask; shared by SHRM and fibrosis."""

    def finish(scene: Scene) -> None:
        tops = scene.tops()
        mask = scene.band(tops[layer], tops[below], columns_of(profile))
        mask = ensure_pixel(mask, tops[layer][int(centre)], centre)
        scene.paint.append((mask, blotches(scene, rng, brightness, spread)))
        scene.add_shadow(mask, 0.006)
        scene.add_mask(layer, mask)

    return finish


def plan_srf(scene: Scene, findings: Mapping[str, Any], rng: np.random.Generator) -> Finisher:
    """A dark lens of fluid lifting the neurosensory retina off the RPE."""
    widths, heights = VOLUME_SRF_UM[findings["srf_volume"]]
    profile, centre = _subretinal(scene, "srf", "srf", rng.uniform(*widths), rng.uniform(*heights),
                                  findings["srf_location"], rng, 1.2)

    def finish(scene: Scene) -> None:
        tops = scene.tops()
        mask = scene.band(tops["srf"], tops["shrm"], columns_of(profile))
        scene.add_mask("srf", ensure_pixel(mask, tops["srf"][int(centre)], centre))

    return finish


def plan_shrm(scene: Scene, findings: Mapping[str, Any], rng: np.random.Generator) -> Finisher:
    """Heterogeneous bright material between the photoreceptors and the RPE."""
    widths, heights = AMOUNT_SHRM_UM[findings["shrm_amount"]]
    profile, centre = _subretinal(scene, "shrm", "shrm", rng.uniform(*widths), rng.uniform(*heights),
                                  findings["shrm_location"], rng, 0.8)
    profile *= wobble(scene.geom.width, rng, 0.2, scene.geom.cols(150.0))
    scene.thickness["shrm"] = profile
    scene.value["ez"] = scene.value["ez"] - 0.25 * (profile > 0.5)

    return _subretinal_finisher("shrm", "fibrosis", profile, centre, rng, brightness=0.68, spread=0.14)


def plan_fibrosis(scene: Scene, findings: Mapping[str, Any], rng: np.random.Generator) -> Finisher:
    """A dense bright scar under the retina that merges with the RPE and disrupts the outer
    retinal bands above it."""
    geom = scene.geom
    width, height = rng.uniform(700, 1600), rng.uniform(45, 100)
    profile, centre = _subretinal(scene, "fibrosis", "fibrosis", width, height,
                                  findings["fibrosis_location"], rng, 0.35)
    profile *= wobble(geom.width, rng, 0.15, geom.cols(200.0))
    scene.thickness["fibrosis"] = profile
    over = np.clip(profile / max(float(profile.max()), 1e-3) * 3.0, 0.0, 1.0)
    for layer in ("ez", "iz", "elm"):
        scene.value[layer] = scene.value[layer] - 0.3 * over
    # The scar replaces the photoreceptors, so the inner retina bulges little over it.
    scene.thickness["onl"] = np.maximum(scene.thickness["onl"] * (1.0 - 0.45 * over) - 0.5 * profile, 1.5)

    return _subretinal_finisher("fibrosis", "sub_rpe", profile, centre, rng, brightness=0.84, spread=0.08)


def _scattered_centres(scene: Scene, location: str, counts: tuple[int, int], rng: np.random.Generator,
                       anchor_half_width_um: float, spread_um: float, margin_um: float = 0.0) -> np.ndarray:
    """Centres of a random number (within `counts`) of small lesions such as cysts or foci.

    At a side or the fovea they spread `spread_um` either way of one anchor (placed for a lesion
    of half width `anchor_half_width_um`) and stay `margin_um` inside the visible field; diffuse
    ones (at least three) lie on both sides of the fovea.
    """
    geom = scene.geom
    count = int(rng.integers(counts[0], counts[1] + 1))
    if location == "diffuse":
        return diffuse_centres(max(count, 3), scene.eye, scene.fovea_col, geom, rng)
    anchor = lesion_centre(location, scene.eye, scene.fovea_col, geom, rng, anchor_half_width_um)
    return geom.keep_visible(anchor + geom.cols(rng.uniform(-spread_um, spread_um, count)), margin_um)


def plan_irf(scene: Scene, findings: Mapping[str, Any], rng: np.random.Generator) -> Finisher:
    """Dark round or oval cysts in the inner nuclear and outer nuclear layers; the retina
    swells around them."""
    geom = scene.geom
    counts, (h_low, h_high) = CYSTS[findings["irf_volume"]]
    anchors = _scattered_centres(scene, findings["irf_location"], counts, rng, anchor_half_width_um=300.0,
                                 spread_um=350.0, margin_um=100.0)
    cysts = []
    swelling = {"inl": np.zeros(geom.width, np.float32), "onl": np.zeros(geom.width, np.float32)}
    for centre in anchors:
        height_um = rng.uniform(h_low, h_high)
        half_height = max(geom.rows(height_um / 2), 1.2)
        # Wider than tall in um, so cysts look round-to-oval on the anisotropic pixel grid.
        half_width = max(geom.cols(height_um * rng.uniform(0.8, 1.4)), 1.0)
        layer = "inl" if height_um < 80 and rng.random() < 0.5 else "onl"
        # The retina thickens broadly around cysts (overlapping swellings do not add up).
        swelling[layer] = np.maximum(swelling[layer], dome(scene.cols, centre, half_width * 3.0,
                                                           2 * half_height * 0.8, 0.5))
        cysts.append((centre, half_height, half_width, layer))

    for layer, extra in swelling.items():
        scene.thickness[layer] = scene.thickness[layer] + extra

    def finish(scene: Scene) -> None:
        tops = scene.tops()
        for centre, half_height, half_width, layer in cysts:
            c = int(np.clip(centre, 0, geom.width - 1))
            top, bottom = tops[layer][c], scene.bottom(layer)[c]
            row = np.clip(top + (bottom - top) * rng.uniform(0.35, 0.6), top + half_height * 0.6,
                          max(bottom - half_height * 0.6, top + 1))
            mask = scene.ellipse(row, centre, half_height, half_width)
            scene.paint.append((mask, 0.03))
            scene.add_mask("irf", mask)

    return finish


def plan_hrf(scene: Scene, findings: Mapping[str, Any], rng: np.random.Generator) -> Finisher:
    """Small bright dots in the inner and outer nuclear layers, with faint shadows beneath."""
    geom = scene.geom
    centres = _scattered_centres(scene, findings["hrf_location"], HRF_COUNTS[findings["hrf_count"]], rng,
                                 anchor_half_width_um=250.0, spread_um=300.0)

    def finish(scene: Scene) -> None:
        tops = scene.tops()
        for centre in centres:
            c = int(np.clip(centre, 0, geom.width - 1))
            top, bottom = tops["inl"][c], tops["elm"][c]
            row = rng.uniform(top + 1, max(bottom - 1.5, top + 1.5))
            mask = scene.ellipse(row, centre, max(geom.rows(rng.uniform(10, 18)), 1.0),
                                 max(geom.cols(rng.uniform(12, 24)), 0.6))
            scene.paint.append((mask, 0.9))
            scene.add_shadow(mask, 0.01)
            scene.add_mask("hrf", mask)

    return finish


def plan_other_pathology(scene: Scene, findings: Mapping[str, Any], rng: np.random.Generator) -> Finisher:
    """Vitreoretinal interface disease unrelated to AMD: an epiretinal membrane (bright line on a
    wrinkled inner retina), vitreomacular traction (hyaloid pulling the fovea up) or a lamellar
    hole (an irregular inner foveal defect)."""
    geom = scene.geom
    kind = findings["other_pathology_kind"]
    fovea = scene.fovea_col
    if kind == "epiretinal membrane":
        half = geom.cols(rng.uniform(900, 1800))
        span = np.abs(scene.cols - fovea) < half
        scene.thickness["gcl"] += span * dome(scene.cols, fovea, half, geom.rows(40.0), 0.8)
        scene.thickness["nfl"] = scene.thickness["nfl"] * wobble(geom.width, rng, 0.35, 3.0)
    elif kind == "vitreomacular traction":
        half = geom.cols(rng.uniform(250, 450))
        tent = geom.rows(rng.uniform(70, 130))
        scene.thickness["nfl"] = scene.thickness["nfl"] + dome(scene.cols, fovea, half, tent, 0.7)
        span = np.ones(geom.width, bool)
    else:  # lamellar hole
        half = geom.cols(rng.uniform(250, 400))
        span = np.abs(scene.cols - fovea) < half

    def finish(scene: Scene) -> None:
        tops = scene.tops()
        ilm = tops["nfl"]
        if kind == "epiretinal membrane":
            mask = scene.band(ilm - 1.6, ilm, span)
            scene.paint.append((mask, 0.9))
        elif kind == "vitreomacular traction":
            rise = np.maximum(np.abs(scene.cols - fovea) - half * 0.6, 0.0) * rng.uniform(0.35, 0.7)
            line = ilm[int(fovea)] - rise - 1.0
            mask = scene.band(line - 1.2, line, span & (line > 1))
            scene.paint.append((mask, 0.55))
        else:
            depth = dome(scene.cols, fovea, half, 1.0, 0.5)
            bottom = tops["opl"] + (tops["onl"] - tops["opl"]) * 0.6 * depth + 1.0
            mask = scene.band(ilm - 0.5, bottom, span & (depth > 0.1))
            scene.paint.append((mask, 0.05))
        scene.add_mask("other_pathology", ensure_pixel(mask, ilm[int(fovea)] - 1, fovea))

    return finish
