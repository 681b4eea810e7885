"""The phantom cohort: patients with one or two eyes and several visits, their target stages,
ages, sexes, scanner quality, visual acuity, and a train/validation/test split by patient."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from dataset.clinical import STAGES, is_present
from dataset.splits import SPLITS

# logMAR by stage before the effect of central lesions; late disease sees worst.
STAGE_ACUITY = {"healthy": 0.0, "early": 0.08, "intermediate": 0.16, "late_dry": 0.5,
                "late_wet_inactive": 0.55, "late_wet_active": 0.45}


@dataclass
class ScanSlot:
    """One scan of the cohort before its findings are drawn."""

    patient_id: str
    eye: str
    visit: int
    sex: str
    age: int
    split: str
    target_stage: str


def stage_counts(num_images: int, prevalence: Mapping[str, float]) -> dict[str, int]:
    """Images per stage, proportional to `prevalence` (largest remainder, so they sum exactly).

    Raises:
        ValueError: if a stage is unknown or the weights are not positive.
    """
    unknown = set(prevalence) - set(STAGES)
    if unknown:
        raise ValueError(f"dataset.phantom.stage_prevalence has unknown stage(s) {sorted(unknown)}; "
                         f"use {list(STAGES)}")
    weights = np.array([float(prevalence.get(s, 0.0)) for s in STAGES])
    if (weights < 0).any() or weights.sum() <= 0:
        raise ValueError("dataset.phantom.stage_prevalence must be non-negative and not all zero")
    exact = weights / weights.sum() * num_images
    counts = np.floor(exact).astype(int)
    for index in np.argsort(-(exact - counts), kind="stable")[: num_images - counts.sum()]:
        counts[index] += 1
    return dict(zip(STAGES, counts.tolist()))


def _assign_splits(patient_sizes: Sequence[int], fractions: Mapping[str, float],
                   rng: np.random.Generator) -> list[str]:
    """Split per patient: each patient, in random order, joins the split furthest below target."""
    shares = np.array([float(fractions.get(s, 0.0)) for s in SPLITS])
    if (shares < 0).any() or shares.sum() <= 0:
        raise ValueError(f"dataset.phantom.split_fractions must be non-negative over {SPLITS}")
    target = shares / shares.sum() * sum(patient_sizes)
    filled = np.zeros(len(SPLITS))
    splits = [""] * len(patient_sizes)
    for patient in rng.permutation(len(patient_sizes)):
        choice = int(np.argmax((target - filled) / np.maximum(target, 1e-9)))
        splits[patient] = SPLITS[choice]
        filled[choice] += patient_sizes[patient]
    return splits


def plan_cohort(num_images: int, prevalence: Mapping[str, float], split_fractions: Mapping[str, float],
                visits_per_eye: Sequence[int], two_eye_fraction: float, rng: np.random.Generator,
                stages: Sequence[str] | None = None) -> list[ScanSlot]:
    """Lay out patients, eyes and visits and give every scan a target stage.

    Stages follow `prevalence` exactly (up to rounding); within an eye they never regress over
    visits, as disease progresses. Older patients carry more advanced disease.

    Args:
        num_images: number of scans.
        prevalence: stage id -> weight.
        split_fractions: train/validation/test weights (by images, assigned per patient).
        visits_per_eye: [min, max] visits of one eye.
        two_eye_fraction: share of patients with both eyes scanned.
        rng: random generator.
        stages: explicit target stages (one scan per patient); overrides `prevalence`.

    Returns:
        One slot per scan, patients in order.
    """
    if stages is not None:
        eyes_of = [[1] for _ in stages]
        stage_list = list(stages)
    else:
        low, high = int(visits_per_eye[0]), int(visits_per_eye[-1])
        eyes_of, total = [], 0
        while total < num_images:
            num_eyes = 2 if rng.random() < two_eye_fraction else 1
            eyes = [int(rng.integers(low, high + 1)) for _ in range(num_eyes)]
            eyes_of.append(eyes)
            total += sum(eyes)
        excess = total - num_images
        while excess > 0:  # trim visits from the last patients
            eyes = eyes_of[-1]
            cut = min(excess, eyes[-1])
            eyes[-1] -= cut
            excess -= cut
            if eyes[-1] == 0:
                eyes.pop()
            if not eyes:
                eyes_of.pop()
        stage_list = [s for s, n in stage_counts(num_images, prevalence).items() for _ in range(n)]
        stage_list = [stage_list[i] for i in rng.permutation(len(stage_list))]

    sizes = [sum(eyes) for eyes in eyes_of]
    splits = _assign_splits(sizes, split_fractions, rng)
    slots: list[ScanSlot] = []
    cursor = 0
    for index, eyes in enumerate(eyes_of):
        patient_stages = stage_list[cursor: cursor + sizes[index]]
        cursor += sizes[index]
        severity = max(STAGES.index(s) for s in patient_stages)
        base_age = float(np.clip(rng.normal(60.0 + 4.5 * severity, 7.0), 50, 93))
        sex = "female" if rng.random() < 0.57 else "male"
        sides = ["left", "right"] if rng.random() < 0.5 else ["right", "left"]
        offset = 0
        for eye_index, visits in enumerate(eyes):
            eye_stages = sorted(patient_stages[offset: offset + visits], key=STAGES.index)
            offset += visits
            age = base_age
            for visit in range(visits):
                slots.append(ScanSlot(patient_id=f"P{index + 1:04d}", eye=sides[eye_index], visit=visit + 1,
                                      sex=sex, age=int(age), split=splits[index],
                                      target_stage=eye_stages[visit]))
                age += rng.uniform(0.4, 1.5)
    return slots


def sample_quality(stage: str, age: int, rng: np.random.Generator) -> int:
    """Scanner quality index 0-100: lower with age and advanced disease (fixation, media)."""
    return int(np.clip(rng.normal(76.0 - 2.5 * STAGES.index(stage) - 0.2 * (age - 70), 10.0), 15, 98))


def _central(findings: Mapping[str, object], biomarker: str) -> bool:
    return is_present(findings, biomarker) and findings.get(f"{biomarker}_location") in ("foveal", "diffuse")


def sample_acuity(findings: Mapping[str, object], stage: str, rng: np.random.Generator) -> float:
    """logMAR visual acuity: worse with late disease and with central fluid, atrophy or scar."""
    logmar = STAGE_ACUITY[stage] + rng.normal(0.0, 0.08)
    if _central(findings, "srf") or _central(findings, "irf"):
        logmar += 0.25
    if _central(findings, "rpe_atrophy") and findings.get("rpe_atrophy_state") == "atrophy":
        logmar += 0.3
    if _central(findings, "fibrosis"):
        logmar += 0.35
    return round(float(np.clip(logmar, -0.1, 1.6)), 2)
