"""Lesions of the RPE: drusen, PED, the double-layer sign, RPE atrophy and hypertransmission.

Each `plan_*` edits layer thicknesses now and returns a finisher that paints the lesion and
records its mask once the layers are stacked. Sizes follow the clinical yaml (drusen width
classes, the cRORA width threshold).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from dataset.clinical import load_knowledge
from dataset.phantom.geometry import diffuse_centres, lesion_centre
from dataset.phantom.scene import Scene
from dataset.phantom.shapes import Finisher, blotches, columns_of, dome, ensure_pixel, plateau, wobble

COUNTS = {"one": (1, 1), "few": (2, 4), "many": (5, 9)}
PED_WIDTH_UM = {"small": (350, 600), "medium": (600, 1100), "large": (1100, 1900)}
PED_CONTENT = {"drusenoid": 0.50, "serous": 0.04, "fibrovascular": 0.45}
HYPER_BOOST = {"mild": 0.08, "moderate": 0.13, "significant": 0.18}


def drusen_width_um(size: str, rng: np.random.Generator) -> float:
    """A druse width in um inside the yaml's size class."""
    limits = load_knowledge().imaging["drusen_size_um"]
    small, large = float(limits["small_below"]), float(limits["large_above"])
    low, high = {"small": (0.6 * small, small - 3), "medium": (small + 3, large - 3),
                 "large": (large + 8, 2.2 * large)}[size]
    return float(rng.uniform(low, high))


def _centres(scene: Scene, location: str, count: int, spread_um: float, half_um: float,
             rng: np.random.Generator) -> np.ndarray:
    geom = scene.geom
    if location == "diffuse":
        anchors = diffuse_centres(3, scene.eye, scene.fovea_col, geom, rng)
        centres = [anchors[i % 3] + geom.cols(rng.uniform(-spread_um, spread_um)) for i in range(count)]
        centres[: min(3, count)] = anchors[: min(3, count)]
        return geom.keep_visible(np.array(centres), half_um)
    anchor = lesion_centre(location, scene.eye, scene.fovea_col, geom, rng, half_um + spread_um)
    return geom.keep_visible(anchor + geom.cols(rng.uniform(-spread_um, spread_um, count)), half_um)


def plan_drusen(scene: Scene, findings: Mapping[str, Any], rng: np.random.Generator) -> Finisher:
    """Dome-shaped RPE elevations of medium-reflective material, sized by width class."""
    geom = scene.geom
    low, high = COUNTS[findings["drusen_count"]]
    count = int(rng.integers(low, high + 1))
    if findings["drusen_location"] == "diffuse":
        count = max(count, 3)
    confluent = str(findings.get("drusen_confluent")).lower() == "true"
    widths = [drusen_width_um(findings["drusen_size"], rng) for _ in range(count)]
    spread = 0.45 * float(np.mean(widths)) * count if confluent else 180.0 + 80.0 * count
    centres = _centres(scene, findings["drusen_location"], count, spread, max(widths) / 2, rng)
    if confluent:  # touching drusen: line them up so neighbours overlap
        middle = geom.keep_visible(centres.mean(), sum(widths) * 0.35)
        start = middle - geom.cols(sum(widths) * 0.35)
        centres = start + np.cumsum([0.0] + [geom.cols(w * 0.7) for w in widths[:-1]])
    profile = np.zeros(geom.width, np.float32)
    for centre, width in zip(centres, widths):
        height = max(geom.rows(min(width * rng.uniform(0.3, 0.42), 65.0) + 8.0), 1.6)
        profile = np.maximum(profile, dome(scene.cols, centre, max(geom.cols(width) / 2, 0.8), height, 0.5))
    scene.lift_sub_rpe("drusen", profile, rng.uniform(0.4, 0.5))
    # Photoreceptors over a druse are displaced and thinned rather than the whole retina lifted.
    scene.thickness["onl"] = np.maximum(scene.thickness["onl"] - 0.85 * profile, 1.0)

    def finish(scene: Scene) -> None:
        tops = scene.tops()
        columns = scene.owned_columns("drusen")
        mask = scene.band(tops["sub_rpe"], tops["bruch"], columns)
        peak = int(np.argmax(profile))
        scene.add_mask("drusen", ensure_pixel(mask, tops["bruch"][peak] - 1, peak))

    return finish


def plan_ped(scene: Scene, findings: Mapping[str, Any], rng: np.random.Generator) -> Finisher:
    """A large dome lift of the RPE; content dark (serous), medium (drusenoid) or mixed and
    irregular (fibrovascular)."""
    geom = scene.geom
    kind = findings["ped_type"]
    width = rng.uniform(*PED_WIDTH_UM[findings["ped_size"]])
    height_um = min(width * rng.uniform(0.2, 0.32), 420.0)
    centre = lesion_centre(findings["ped_location"], scene.eye, scene.fovea_col, geom, rng, width / 2)
    power = {"serous": 0.6, "drusenoid": 0.7, "fibrovascular": 0.9}[kind]
    if kind == "fibrovascular":
        height_um *= 0.65
    profile = dome(scene.cols, centre, geom.cols(width / 2), geom.rows(height_um), power)
    if kind == "fibrovascular":
        profile = profile * wobble(geom.width, rng, 0.15, geom.cols(250.0))
    scene.lift_sub_rpe("ped", profile, PED_CONTENT[kind])
    scene.thickness["onl"] = np.maximum(scene.thickness["onl"] - 0.15 * profile, 2.0)

    def finish(scene: Scene) -> None:
        tops = scene.tops()
        mask = scene.band(tops["sub_rpe"], tops["bruch"], scene.owned_columns("ped"))
        mask = ensure_pixel(mask, tops["bruch"][int(centre)] - 1, centre)
        if kind == "fibrovascular":
            scene.paint.append((mask, blotches(scene, rng, 0.45, 0.22)))
        scene.add_mask("ped", mask)
        if kind != "serous":
            scene.add_shadow(mask, 0.002)

    return finish


def plan_double_layer_sign(scene: Scene, findings: Mapping[str, Any], rng: np.random.Generator) -> Finisher:
    """A long, flat, irregular RPE lift that shows RPE and Bruch's membrane as two bright lines."""
    geom = scene.geom
    short = findings["double_layer_sign_extent"] == "short"
    width = rng.uniform(700, 1100) if short else rng.uniform(1300, 2300)
    location = findings["double_layer_sign_location"]
    centre = lesion_centre(location, scene.eye, scene.fovea_col, geom, rng, width / 2)
    height = max(geom.rows(rng.uniform(28.0, 45.0)), 3.2)
    profile = plateau(scene.cols, centre, geom.cols(width / 2), height, geom.cols(150.0))
    profile = profile * wobble(geom.width, rng, 0.3, geom.cols(120.0))
    scene.lift_sub_rpe("double_layer_sign", profile, rng.uniform(0.22, 0.32))
    lifted = profile > 0.5
    bruch = np.broadcast_to(np.asarray(scene.value["bruch"], np.float32), lifted.shape).copy()
    bruch[lifted] = 0.86  # Bruch's membrane stands out as the second bright line
    scene.value["bruch"] = bruch
    scene.thickness["bruch"] = np.where(lifted, np.maximum(scene.thickness["bruch"], 1.3),
                                        scene.thickness["bruch"])

    def finish(scene: Scene) -> None:
        tops = scene.tops()
        mask = scene.band(tops["sub_rpe"], tops["bruch"], scene.owned_columns("double_layer_sign"))
        scene.add_mask("double_layer_sign", ensure_pixel(mask, tops["bruch"][int(centre)] - 1, centre))

    return finish


def _atrophy_columns(scene: Scene, location: str, width_um: float, rng: np.random.Generator) -> np.ndarray:
    centre = lesion_centre(location, scene.eye, scene.fovea_col, scene.geom, rng, width_um / 2)
    half = max(scene.geom.cols(width_um / 2), 1.0)
    return plateau(scene.cols, centre, half, 1.0, min(half * 0.3, 2.0))


def plan_atrophy(scene: Scene, findings: Mapping[str, Any], rng: np.random.Generator) -> Finisher:
    """RPE atrophy with or without hypertransmission.

    With hypertransmission the RPE is lost over the segment, the photoreceptor bands collapse and
    light passes into the choroid, which shows a bright column (iRORA narrow, cRORA at least the
    yaml's cRORA width). Without it the RPE band is thinned and irregular (degeneration).
    """
    geom = scene.geom
    hyper = bool(findings.get("hypertransmission"))
    crora_um = float(load_knowledge().imaging["crora_min_width_um"])
    if hyper:
        kind = findings["hypertransmission_type"]
        severity = findings["hypertransmission_severity"]
        span = {"mild": (1.05, 1.8), "moderate": (1.6, 3.5), "significant": (3.0, 6.0)}[severity]
        width = crora_um * rng.uniform(*span) if kind == "cRORA" else rng.uniform(0.4, 0.85) * crora_um
        location = findings["hypertransmission_location"]
    else:
        severity, kind = None, None
        width = rng.uniform(300.0, 900.0)
        location = findings["rpe_atrophy_location"]
    # At least the width in columns, so a cRORA stays >= the threshold after rounding.
    weight = _atrophy_columns(scene, location, width + geom.lateral_um, rng)
    # The outer retina collapses over the atrophy but tapers off over ~150 um at its edges.
    taper_cols = int(geom.cols(150.0)) * 2 + 1
    taper = np.convolve(weight, np.ones(taper_cols) / taper_cols, "same")
    lost = 1.0 if findings["rpe_atrophy_state"] == "atrophy" else 0.6
    scene.thickness["rpe"] = scene.thickness["rpe"] * (1.0 - 0.6 * lost * weight)
    scene.value["rpe"] = scene.value["rpe"] - (0.5 * lost * weight) * wobble(geom.width, rng, 0.2, 3.0)
    if hyper:
        for layer in ("inner_segments", "ez", "outer_segments", "iz", "elm"):
            scene.thickness[layer] = scene.thickness[layer] * (1.0 - 0.85 * taper)
        scene.thickness["onl"] = scene.thickness["onl"] * (1.0 - 0.3 * lost * taper)
        scene.choroid_boost = scene.choroid_boost + HYPER_BOOST[severity] * weight
        scene.decay_gain = scene.decay_gain * (1.0 + 1.8 * weight)
    else:
        scene.value["ez"] = scene.value["ez"] - 0.2 * weight

    def finish(scene: Scene) -> None:
        tops = scene.tops()
        columns = columns_of(weight, 0.05)
        centre = float(np.mean(np.nonzero(columns)[0]))
        rpe = scene.band(tops["rpe"] - 0.5, tops["sub_rpe"] + 0.5, columns)
        scene.add_mask("rpe_atrophy", ensure_pixel(rpe, tops["rpe"][int(centre)], centre))
        if hyper:
            column = scene.band(tops["choroid"], tops["sclera"], columns)
            column = ensure_pixel(column, tops["choroid"][int(centre)] + 1, centre)
            scene.add_mask("hypertransmission", column)

    return finish


def finish_rpe_elevation(scene: Scene) -> None:
    """Mask of RPE elevation: the lifted RPE and whatever lifts it, over every sub-RPE lift."""
    tops = scene.tops()
    lifted = np.zeros(scene.geom.width, np.float32)
    for profile in scene.lifts.values():
        lifted = np.maximum(lifted, profile)
    columns = columns_of(lifted, 0.25)
    mask = scene.band(tops["rpe"], tops["bruch"], columns)
    peak = int(np.argmax(lifted))
    scene.add_mask("rpe_elevation", ensure_pixel(mask, tops["rpe"][peak] + 1, peak))
