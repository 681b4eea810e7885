"""Sample the findings of one scan for a target stage.

Findings are drawn per target stage so every stage is represented; implied findings are added
(drusen, PED and the double-layer sign lift the RPE; hypertransmission means RPE atrophy). The
stage itself is never set here: callers derive it from the findings with the clinical rules.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dataset.clinical import load_knowledge, stage_from_findings

Findings = dict[str, Any]
SIDES = ("foveal", "nasal", "temporal")
ELEVATING = ("ped", "double_layer_sign", "drusen")  # largest first: it names the elevation's place
MAX_TRIES = 50


def empty_findings() -> Findings:
    """All biomarkers absent, every attribute column empty (None)."""
    findings: Findings = {}
    for biomarker in load_knowledge().biomarkers.values():
        findings[biomarker.id] = False
        for attribute in biomarker.attributes:
            findings[biomarker.attribute_column(attribute)] = None
    return findings


def _pick(rng: np.random.Generator, options, p=None):
    return options[int(rng.choice(len(options), p=p))]


def _place(rng: np.random.Generator, focus: str) -> str:
    """Lesions cluster: usually at the scan's focus of disease, sometimes elsewhere."""
    return focus if rng.random() < 0.7 else _pick(rng, SIDES)


def _add_drusen(f: Findings, rng, focus: str, size: str | None = None) -> None:
    size = size or _pick(rng, ("small", "medium"))
    count = _pick(rng, ("one", "few", "many"), [0.25, 0.45, 0.3])
    confluent = size == "large" and count != "one" and rng.random() < 0.4
    location = "diffuse" if count == "many" and rng.random() < 0.6 else _place(rng, focus)
    f.update(drusen=True, drusen_size=size, drusen_count=count,
             drusen_confluent="true" if confluent else "false", drusen_location=location)


def _add_ped(f: Findings, rng, focus: str, kind: str) -> None:
    f.update(ped=True, ped_type=kind, ped_size=_pick(rng, ("small", "medium", "large"), [0.4, 0.4, 0.2]),
             ped_location=_place(rng, focus))


def _add_double_layer_sign(f: Findings, rng, focus: str) -> None:
    f.update(double_layer_sign=True, double_layer_sign_extent=_pick(rng, ("short", "long")),
             double_layer_sign_location=_place(rng, focus))


def _add_hypertransmission(f: Findings, rng, focus: str, kind: str) -> None:
    severity = _pick(rng, ("mild", "moderate"), [0.6, 0.4]) if kind == "iRORA" else \
        _pick(rng, ("mild", "moderate", "significant"), [0.2, 0.4, 0.4])
    location = _place(rng, focus)
    f.update(hypertransmission=True, hypertransmission_type=kind, hypertransmission_severity=severity,
             hypertransmission_location=location)
    f.update(rpe_atrophy=True, rpe_atrophy_location=location,
             rpe_atrophy_state="atrophy" if kind == "cRORA" else "degeneration")


def _add_degeneration(f: Findings, rng, focus: str) -> None:
    f.update(rpe_atrophy=True, rpe_atrophy_state="degeneration", rpe_atrophy_location=_place(rng, focus))


def _add_simple(f: Findings, biomarker: str, attribute: str | None, options, rng, focus: str, p=None) -> None:
    f[biomarker] = True
    f[f"{biomarker}_location"] = _place(rng, focus)
    if attribute:
        f[f"{biomarker}_{attribute}"] = _pick(rng, options, p)


def _add_hrf(f: Findings, rng, focus: str) -> None:
    count = _pick(rng, ("one", "few", "many"), [0.3, 0.45, 0.25])
    location = "diffuse" if count == "many" and rng.random() < 0.5 else _place(rng, focus)
    f.update(hrf=True, hrf_count=count, hrf_location=location)


def _add_other(f: Findings, rng) -> None:
    kinds = load_knowledge().biomarkers["other_pathology"].attributes["kind"]
    f.update(other_pathology=True, other_pathology_kind=_pick(rng, kinds, [0.3, 0.5, 0.2]))


def _draw_for_stage(stage: str, rng: np.random.Generator) -> Findings:
    f = empty_findings()
    focus = _pick(rng, SIDES, [0.5, 0.25, 0.25])
    if stage == "early":
        _add_drusen(f, rng, focus)
    elif stage == "intermediate":
        primary = _pick(rng, ("large_drusen", "drusenoid", "serous", "dls", "irora", "degeneration"),
                        [0.4, 0.15, 0.1, 0.12, 0.13, 0.1])
        if primary == "large_drusen":
            _add_drusen(f, rng, focus, "large")
        elif primary in ("drusenoid", "serous"):
            _add_ped(f, rng, focus, primary)
        elif primary == "dls":
            _add_double_layer_sign(f, rng, focus)
        elif primary == "irora":
            _add_hypertransmission(f, rng, focus, "iRORA")
        else:
            _add_degeneration(f, rng, focus)
        if not f["drusen"] and rng.random() < 0.5:
            _add_drusen(f, rng, focus, _pick(rng, ("small", "medium", "large")))
    elif stage == "late_dry":
        _add_hypertransmission(f, rng, focus, "cRORA")
        if rng.random() < 0.5:
            _add_drusen(f, rng, focus, _pick(rng, ("small", "medium", "large")))
        if rng.random() < 0.1:
            _add_double_layer_sign(f, rng, focus)
    elif stage in ("late_wet_inactive", "late_wet_active"):
        _draw_neovascular(f, rng, focus, active=stage == "late_wet_active")
    if stage != "healthy" and rng.random() < (0.45 if stage.startswith("late") else 0.2):
        _add_hrf(f, rng, focus)
    if rng.random() < 0.07:
        _add_other(f, rng)
    add_implied_findings(f)
    return f


def _draw_neovascular(f: Findings, rng, focus: str, active: bool) -> None:
    scar = ("fibrosis", "shrm", "fibrovascular")
    chosen = {_pick(rng, scar, [0.35, 0.35, 0.3])}
    if rng.random() < 0.3:
        chosen.add(_pick(rng, scar))
    if active:
        chosen = {c for c in chosen if rng.random() < 0.5}
        fluid = _pick(rng, ("srf", "irf", "both"), [0.45, 0.25, 0.3])
        if fluid in ("srf", "both"):
            _add_simple(f, "srf", "volume", ("small", "moderate", "large"), rng, focus)
        if fluid in ("irf", "both"):
            _add_simple(f, "irf", "volume", ("small", "moderate", "large"), rng, focus)
        if "fibrovascular" not in chosen and rng.random() < 0.15:
            _add_ped(f, rng, focus, "serous")
    if "fibrosis" in chosen:
        _add_simple(f, "fibrosis", None, (), rng, focus)
    if "shrm" in chosen:
        _add_simple(f, "shrm", "amount", ("small", "moderate", "large"), rng, focus)
    if "fibrovascular" in chosen:
        _add_ped(f, rng, focus, "fibrovascular")
    if rng.random() < 0.3:
        _add_drusen(f, rng, focus, _pick(rng, ("small", "medium", "large")))
    if not active and rng.random() < 0.12:
        _add_hypertransmission(f, rng, focus, "cRORA")


def add_implied_findings(f: Findings) -> None:
    """Add the findings others imply: RPE elevation under drusen, PED and the double-layer sign,
    located where they are (or `diffuse` when they lie in different places). Hypertransmission's
    RPE atrophy is added where hypertransmission is drawn."""
    lifts = [b for b in ELEVATING if f[b]]
    if lifts:
        places = {f[f"{b}_location"] for b in lifts}
        f["rpe_elevation"] = True
        f["rpe_elevation_location"] = places.pop() if len(places) == 1 else "diffuse"


def sample_findings(stage: str, rng: np.random.Generator) -> Findings:
    """Findings whose derived stage is `stage` (retrying a few draws), else the last draw.

    Args:
        stage: target stage id.
        rng: random generator.

    Returns:
        A findings dict with every biomarker column and attribute column (None when absent).
        Its stage must be derived by `dataset.clinical.stage_from_findings`, never assumed.
    """
    findings = empty_findings()
    for _ in range(MAX_TRIES):
        findings = _draw_for_stage(stage, rng)
        if stage_from_findings(findings) == stage:
            return findings
    return findings

