"""Annotation tables (contract format) over small deterministic scans, one kind per area's tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dataset.clinical import BIOMARKERS
from support.scans import lesion_scan, write_scan

# Reports of the masked saliency table; also the tokenizer texts of the saliency VLM.
REPORTS = [
    "Large drusen are seen nasally with subretinal fluid temporally. No intraretinal fluid.",
    "Hyperreflective foci and subretinal hyperreflective material are present; no subretinal fluid.",
    "A drusenoid PED with RPE elevation. Intraretinal fluid is absent.",
]

# Curriculum tables: (findings, report) per image; stages follow from the findings by the clinical rules.
CASES: list[tuple[dict[str, Any], str]] = [
    ({}, "Normal retinal layers with a preserved foveal contour. No drusen, no fluid. Healthy retina."),
    ({"drusen": 1, "drusen_size": "small", "drusen_location": "nasal", "rpe_elevation": 1},
     "A few small drusen nasally with mild RPE elevation. No fluid. Early AMD."),
    ({"drusen": 1, "drusen_size": "large", "drusen_count": "many", "rpe_elevation": 1},
     "Many large drusen elevating the RPE. No subretinal or intraretinal fluid."),
    ({"hypertransmission": 1, "hypertransmission_type": "cRORA", "rpe_atrophy": 1, "rpe_atrophy_state": "atrophy"},
     "Wide hypertransmission under a stretch of lost RPE (cRORA). Consistent with late dry AMD."),
    ({"shrm": 1, "shrm_amount": "small", "fibrosis": 1},
     "Subretinal hyperreflective material and a fibrotic scar, no fluid. Late wet AMD (inactive)."),
    ({"srf": 1, "srf_volume": "large", "srf_location": "foveal", "irf": 1, "irf_volume": "small"},
     "Large subretinal fluid at the fovea with small intraretinal cysts. Active late wet AMD."),
]

# Evaluation tables: findings per image, cycling.
_EVALUATION_FINDINGS = [
    {},
    {"drusen": 1, "drusen_size": "small", "rpe_elevation": 1},
    {"drusen": 1, "drusen_size": "large", "rpe_elevation": 1},
    {"srf": 1, "srf_volume": "small", "irf": 1, "irf_volume": "small"},
    {"hypertransmission": 1, "hypertransmission_type": "cRORA", "rpe_atrophy": 1, "rpe_atrophy_state": "atrophy"},
    {"shrm": 1, "fibrosis": 1, "hrf": 1},
]


def _write(folder: Path, records: list[dict[str, Any]]) -> Path:
    table = folder / "annotations.csv"
    pd.DataFrame(records).to_csv(table, index=False)
    return table


def write_table(folder: Path, rows: int = 6) -> Path:
    """A valid table of `rows` noise scans over three patients (one per split)."""
    records = []
    splits = ["train", "validation", "test"]
    for i in range(rows):
        patient = i % 3
        write_scan(folder / "images" / f"img{i}.png", seed=i)
        record = {"image_id": f"img{i}", "image_path": f"images/img{i}.png", "patient_id": f"p{patient}",
                  "eye": "left" if i % 2 else "right", "split": splits[patient], "age": 70 + i}
        record.update({b: 0 for b in BIOMARKERS})
        if i % 2:
            record.update({"drusen": 1, "drusen_size": "large", "rpe_elevation": 1})
        records.append(record)
    return _write(folder, records)


def write_tiny_dataset(folder: Path, images_per_split: int = 6) -> Path:
    """Evaluation table: `images_per_split` noise scans in each of train, validation and test (2 per
    patient, so a bootstrap has patients to resample)."""
    records = []
    for split in ("train", "validation", "test"):
        for i in range(images_per_split):
            image_id = f"{split}{i}"
            write_scan(folder / "images" / f"{image_id}.png", seed=len(records))
            record = {"image_id": image_id, "image_path": f"images/{image_id}.png",
                      "patient_id": f"{split}_p{i // 2}", "eye": "left" if i % 2 else "right", "split": split}
            record.update({b: 0 for b in BIOMARKERS})
            record.update(_EVALUATION_FINDINGS[i % len(_EVALUATION_FINDINGS)])
            records.append(record)
    return _write(folder, records)


def write_curriculum_table(folder: Path, copies: int = 1, splits: tuple[str, ...] = ("train", "validation", "test"),
                           with_reports: bool = True) -> Path:
    """Curriculum table: `len(CASES) * copies` images (no scan files), one patient each, splits
    cycling over `splits`."""
    rows = []
    for i in range(len(CASES) * copies):
        findings, report = CASES[i % len(CASES)]
        row = {"image_id": f"img{i:04d}", "image_path": f"images/img{i:04d}.png", "patient_id": f"p{i}",
               "eye": "left" if i % 2 else "right", "split": splits[i % len(splits)], "age": 60 + i % 30,
               "sex": "female" if i % 3 else "male", "visual_acuity_logmar": 0.1 * (i % 5), "quality": 70}
        row.update({b: 0 for b in BIOMARKERS})
        row.update(findings)
        if with_reports:
            row["report"] = report
        rows.append(row)
    folder.mkdir(parents=True, exist_ok=True)
    return _write(folder, rows)


def write_masked_table(folder: Path, rows: int = 3) -> Path:
    """Saliency table: `rows` test-split lesion scans with reports and lesion masks (`mask_path`)."""
    records = []
    for i in range(rows):
        image, mask = lesion_scan(i)
        image.save(folder / f"scan{i}.png")
        # Every finding of the report gets the same lesion; an empty mask for one biomarker shows
        # the "no lesion in view" path.
        findings = {"drusen": mask, "srf": mask, "hrf": mask, "shrm": mask, "ped": mask,
                    "rpe_elevation": np.zeros_like(mask)}
        np.savez(folder / f"scan{i}_masks.npz", **findings)
        record = {"image_id": f"scan{i}", "image_path": f"scan{i}.png", "patient_id": f"p{i}", "eye": "left",
                  "split": "test", "report": REPORTS[i % len(REPORTS)], "mask_path": f"scan{i}_masks.npz"}
        record.update({b: int(b in findings and b != "rpe_elevation") for b in BIOMARKERS})
        records.append(record)
    return _write(folder, records)
