"""Specialist-style free-text reports for phantom scans.

A report names each present finding with its attributes and location, states key absences, and
(usually) the stage and referral. Wording and sentence order vary; names come from the clinical
yaml, so the report never disagrees with the labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from dataset.clinical import is_present, load_knowledge, triage_to_treatment

LOCATION_PHRASES = {
    "foveal": ("at the fovea", "subfoveally", "in the foveal region", "centrally at the fovea"),
    "nasal": ("nasally", "in the nasal macula", "nasal to the fovea"),
    "temporal": ("temporally", "in the temporal macula", "temporal to the fovea"),
    "diffuse": ("scattered across the macula", "throughout the scan", "diffusely across the macula"),
}
COUNT_WORDS = {"one": ("a single", "one"), "few": ("a few", "several"), "many": ("numerous", "many")}


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _name(biomarker: str) -> str:
    return load_knowledge().biomarkers[biomarker].name


def _where(findings: Mapping[str, Any], biomarker: str, rng: np.random.Generator) -> str:
    return _pick(rng, LOCATION_PHRASES[findings[f"{biomarker}_location"]])


def _drusen(f, rng):
    count = f["drusen_count"]
    size = f["drusen_size"]
    noun = "druse" if count == "one" else "drusen"
    confluent = ", partly confluent" if str(f.get("drusen_confluent")).lower() == "true" else ""
    lead = _pick(rng, COUNT_WORDS[count])
    return _pick(rng, (f"{lead.capitalize()} {size} {noun} {_where(f, 'drusen', rng)}{confluent}.",
                       f"There {'is' if count == 'one' else 'are'} {lead} {size} {noun}{confluent} "
                       f"{_where(f, 'drusen', rng)}."))


def _ped(f, rng):
    name = _pick(rng, (_name("ped"), "PED"))
    kind = f"{f['ped_size']} {f['ped_type']} {name}"
    return _pick(rng, (f"A {kind} is present {_where(f, 'ped', rng)}.",
                       f"{_where(f, 'ped', rng).capitalize()} there is a {kind}."))


def _rpe_elevation(f, rng):
    return _pick(rng, (f"The RPE is elevated {_where(f, 'rpe_elevation', rng)}.",
                       f"{_name('rpe_elevation')} {_where(f, 'rpe_elevation', rng)}."))


def _double_layer(f, rng):
    extent = f["double_layer_sign_extent"]
    where = _where(f, "double_layer_sign", rng)
    return _pick(rng, (f"A {extent} {_name('double_layer_sign')} is seen {where}.",
                       f"There is a {extent} double-layer sign {where}, a shallow irregular RPE elevation."))


def _atrophy(f, rng):
    where = _where(f, "rpe_atrophy", rng)
    if f["rpe_atrophy_state"] == "atrophy":
        name = _name("rpe_atrophy")
        return _pick(rng, (f"{name} {where}.", f"The RPE is lost {where} ({name})."))
    return _pick(rng, (f"RPE degeneration {where}, with thinning of the RPE band.",
                       f"The RPE is thinned and irregular {where} (RPE degeneration)."))


def _hypertransmission(f, rng):
    severity, kind = f["hypertransmission_severity"], f["hypertransmission_type"]
    name, where = _name("hypertransmission"), _where(f, "hypertransmission", rng)
    return _pick(rng, (f"{severity.capitalize()} {name} {where}, consistent with {kind}.",
                       f"There is {severity} {name} into the choroid {where} ({kind})."))


def _hrf(f, rng):
    lead = _pick(rng, COUNT_WORDS[f["hrf_count"]])
    if f["hrf_count"] == "one":
        return f"A single focus of HRF {_where(f, 'hrf', rng)}."
    return f"{lead.capitalize()} {_pick(rng, (_name('hrf'), 'HRF'))} {_where(f, 'hrf', rng)}."


def _shrm(f, rng):
    name = _pick(rng, (_name("shrm"), "SHRM"))
    return _pick(rng, (f"A {f['shrm_amount']} amount of {name} {_where(f, 'shrm', rng)}.",
                       f"There is {f['shrm_amount']} {name} {_where(f, 'shrm', rng)}."))


def _fibrosis(f, rng):
    where = _where(f, "fibrosis", rng)
    return _pick(rng, (f"{_name('fibrosis').capitalize()} {where}, with disrupted outer retinal layers.",
                       f"A fibrotic scar is present {where}."))


def _srf(f, rng):
    name = _pick(rng, (_name("srf"), "SRF"))
    return _pick(rng, (f"A {f['srf_volume']} volume of {name} {_where(f, 'srf', rng)}.",
                       f"There is {f['srf_volume']} {name} {_where(f, 'srf', rng)}."))


def _irf(f, rng):
    name = _pick(rng, (_name("irf"), "IRF"))
    return _pick(rng, (f"{f['irf_volume'].capitalize()} {name} with cysts {_where(f, 'irf', rng)}.",
                       f"Intraretinal cysts {_where(f, 'irf', rng)} ({f['irf_volume']} {name})."))


def _other(f, rng):
    kind = f["other_pathology_kind"]
    article = "an" if kind[0] in "aeiou" else "a"
    return _pick(rng, (f"Incidentally, {article} {kind} is noted, unrelated to AMD.",
                       f"{kind.capitalize()} is also seen (not related to AMD)."))


SENTENCES = {"drusen": _drusen, "ped": _ped, "rpe_elevation": _rpe_elevation,
             "double_layer_sign": _double_layer, "rpe_atrophy": _atrophy,
             "hypertransmission": _hypertransmission, "hrf": _hrf, "shrm": _shrm, "fibrosis": _fibrosis,
             "srf": _srf, "irf": _irf, "other_pathology": _other}

# Absence statements, each tied to the biomarkers that must all be absent to say it.
ABSENCES = (
    (("srf", "irf"), ("No subretinal or intraretinal fluid.", "No fluid is seen.",
                      "The retina is dry, with no fluid.")),
    (("drusen",), ("No drusen.", "No drusen are seen.")),
    (("hypertransmission", "rpe_atrophy"), ("No RPE atrophy or hypertransmission.",
                                            "The RPE is intact, without atrophy.")),
    (("shrm", "fibrosis"), ("No subretinal hyperreflective material or fibrosis.", "No SHRM or scarring.")),
    (("ped",), ("No pigment epithelial detachment.", "No PED.")),
)
STAGE_SENTENCES = ("Overall, the appearance is consistent with {stage}.", "Impression: {stage}.",
                   "These findings indicate {stage}.", "Stage: {stage}.", "Diagnosis: {stage}.")
HEALTHY_SENTENCES = ("Impression: {stage} retina, with no signs of AMD.", "Overall, the scan is {stage}.",
                     "Stage: {stage}.")
REFERRAL_SENTENCES = ("Recommendation: {referral}.", "Referral: {referral}.",
                      "Suggested management: {referral}.")


def write_report(findings: Mapping[str, Any], stage: str, referral: str, referral_treatment: str,
                 rng: np.random.Generator, include_stage: bool = True, quality: int | None = None) -> str:
    """A specialist-style report for one scan.

    Args:
        findings: annotation columns of the scan.
        stage, referral, referral_treatment: the labels derived by the clinical rules.
        rng: random generator (wording and order).
        include_stage: whether to state the stage.
        quality: scanner quality index; a poor one is mentioned.

    Returns:
        The report text.
    """
    knowledge = load_knowledge()
    present = [b for b in SENTENCES if is_present(findings, b)]
    # RPE elevation is usually folded into the drusen/PED description rather than stated alone.
    if "rpe_elevation" in present and len(present) > 1 and rng.random() < 0.5:
        present.remove("rpe_elevation")
    findings_text = [SENTENCES[b](findings, rng) for b in present]
    rng.shuffle(findings_text)
    if not findings_text:
        findings_text = [_pick(rng, ("Normal retinal layers with a normal foveal contour.",
                                     "The retinal layers and foveal pit are normal.",
                                     "Normal foveal contour; all retinal layers are intact."))]
    absences = [_pick(rng, texts) for needed, texts in ABSENCES
                if not any(is_present(findings, b) for b in needed) and rng.random() < 0.6]
    if not any(is_present(findings, b) for b in ("srf", "irf")) and not any("fluid" in a for a in absences):
        absences.insert(0, _pick(rng, ABSENCES[0][1]))  # fluid status is always stated
    parts = findings_text + absences[:3]
    if quality is not None and quality < 35:
        parts.insert(0, "Image quality is limited.")
    if include_stage:
        templates = HEALTHY_SENTENCES if stage == "healthy" else STAGE_SENTENCES
        stage_text = _pick(rng, templates).format(stage=knowledge.stage(stage).name)
        parts.insert(0 if rng.random() < 0.25 else len(parts), stage_text)
    if rng.random() < 0.5:
        # The two schemes disagree for early/intermediate AMD (routine triage, yet no treatment
        # referral); word those by triage only, so reports never contradict the triage label.
        consistent = triage_to_treatment(referral) == referral_treatment
        outcome = referral_treatment if consistent and rng.random() < 0.5 else referral
        parts.append(_pick(rng, REFERRAL_SENTENCES).format(referral=knowledge.referral_outcome(outcome).name))
    return " ".join(parts)
