"""Plan every phantom scan: cohort slot, findings, derived labels, tabular values and report.

Labels are derived from the drawn findings by `dataset.clinical` (never restated here); when a
draw does not reach its target stage the derived stage is kept, so labels always match pixels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dataset.clinical import (
    BIOMARKERS,
    load_knowledge,
    referral_from_findings,
    stage_from_findings,
    treatment_referral_from_findings,
)
from dataset.phantom.cohort import ScanSlot, plan_cohort, sample_acuity, sample_quality
from dataset.phantom.findings import sample_findings
from dataset.phantom.reports import write_report

LEADING_COLUMNS = ("image_id", "image_path", "patient_id", "eye", "visit", "split", "age", "sex",
                   "visual_acuity_logmar", "quality", "stage", "referral", "referral_treatment", "report",
                   "mask_path")


def attribute_columns() -> list[str]:
    """`<id>_<attribute>` columns in knowledge-file order."""
    return [b.attribute_column(a) for b in load_knowledge().biomarkers.values() for a in b.attributes]


def table_columns() -> list[str]:
    """All annotation columns the phantom writes, in order (docs/contracts.md section 1)."""
    return [*LEADING_COLUMNS, *BIOMARKERS, *attribute_columns()]


def scan_rngs(seed: int, index: int) -> tuple[np.random.Generator, ...]:
    """Independent generators (findings, render, report) for scan `index`: a scan's content
    depends only on the seed and its index, whatever the worker or chunk that makes it."""
    children = np.random.SeedSequence([int(seed), int(index)]).spawn(3)
    return tuple(np.random.default_rng(child) for child in children)


def plan_slots(num_images: int, phantom: Mapping[str, Any], seed: int,
               stages: Sequence[str] | None = None) -> list[ScanSlot]:
    """The cohort layout (patients, eyes, visits, splits, target stages) for a dataset."""
    cohort_rng = np.random.default_rng([int(seed), 7_919])
    return plan_cohort(num_images, phantom["stage_prevalence"], phantom["split_fractions"],
                       phantom["visits_per_eye"], float(phantom["two_eye_fraction"]), cohort_rng, stages)


def build_record(index: int, slot: ScanSlot, phantom: Mapping[str, Any], seed: int, prefix: str = "phantom",
                 image_name: str = "images/{image_id}.png", mask_name: str | None = "masks/{image_id}.npz"
                 ) -> dict[str, Any]:
    """Everything about scan `index` except its pixels: findings, derived labels, tabular values
    and report.

    Args:
        index: scan number (with `seed`, it fixes the scan's random streams).
        slot: its cohort slot.
        phantom: the `dataset.phantom` config block.
        seed: generation seed.
        prefix: image id prefix.
        image_name, mask_name: paths relative to the output folder, formatted with `image_id`
            and `stage`; no mask column when `mask_name` is None.

    Returns:
        A dict with every table column plus `_findings` and `_quality` for rendering.
    """
    findings_rng, _, report_rng = scan_rngs(seed, index)
    findings = sample_findings(slot.target_stage, findings_rng)
    stage = stage_from_findings(findings)
    referral = referral_from_findings(findings)
    treatment = treatment_referral_from_findings(findings)
    quality = sample_quality(stage, slot.age, findings_rng)
    acuity = sample_acuity(findings, stage, findings_rng)
    include_stage = report_rng.random() >= float(phantom.get("report_without_stage_fraction", 0.0))
    image_id = f"{prefix}_{index:05d}"
    record: dict[str, Any] = {
        "image_id": image_id, "image_path": image_name.format(image_id=image_id, stage=stage),
        "patient_id": slot.patient_id, "eye": slot.eye, "visit": slot.visit, "split": slot.split,
        "age": slot.age, "sex": slot.sex, "visual_acuity_logmar": f"{acuity:.2f}", "quality": quality,
        "stage": stage, "referral": referral, "referral_treatment": treatment,
        "report": write_report(findings, stage, referral, treatment, report_rng, include_stage, quality),
    }
    if mask_name:
        record["mask_path"] = mask_name.format(image_id=image_id, stage=stage)
    for biomarker in BIOMARKERS:
        record[biomarker] = int(bool(findings[biomarker]))
    for column in attribute_columns():
        value = findings.get(column)
        record[column] = "" if value is None else str(value)
    record["_findings"] = findings
    record["_quality"] = quality
    return record

