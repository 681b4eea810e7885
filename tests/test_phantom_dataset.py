"""The phantom dataset end to end: labels, masks, splits, table format and determinism."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from dataset.annotations import load_annotations
from dataset.clinical import (
    BIOMARKERS,
    STAGES,
    load_knowledge,
    referral_from_findings,
    stage_from_findings,
    treatment_referral_from_findings,
)
from dataset.phantom import load_masks, make_dataset
from support.configs import phantom_cfg

NUM_IMAGES = 120


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("phantom")
    cfg = phantom_cfg(tmp_path, f"dataset.phantom.num_images={NUM_IMAGES}", "dataset.phantom.num_workers=1")
    summary = make_dataset(cfg)
    out = tmp_path / "phantom"
    table = pd.read_csv(out / "annotations.csv", dtype=str, keep_default_na=False)
    return summary, out, table


def _findings(row: pd.Series) -> dict:
    findings = {column: row[column] for column in row.index}
    for biomarker in BIOMARKERS:
        findings[biomarker] = row[biomarker] == "1"
    return findings


def test_every_stage_appears_in_proportion(phantom):
    summary, _, table = phantom
    assert len(table) == NUM_IMAGES == summary["num_images"]
    counts = table["stage"].value_counts()
    for stage in STAGES:
        assert counts.get(stage, 0) >= 0.05 * NUM_IMAGES, (stage, counts.to_dict())
    assert summary["stages"] == {s: int(counts.get(s, 0)) for s in STAGES}


def test_labels_equal_the_clinical_rules(phantom):
    _, _, table = phantom
    for _, row in table.iterrows():
        findings = _findings(row)
        assert row["stage"] == stage_from_findings(findings), row["image_id"]
        assert row["referral"] == referral_from_findings(findings), row["image_id"]
        assert row["referral_treatment"] == treatment_referral_from_findings(findings), row["image_id"]


def test_implied_findings_hold(phantom):
    _, _, table = phantom
    lifts = (table[["drusen", "ped", "double_layer_sign"]] == "1").any(axis=1)
    assert ((table["rpe_elevation"] == "1") == lifts).all()
    assert (table.loc[table["hypertransmission"] == "1", "rpe_atrophy"] == "1").all()


def test_masks_are_non_empty_exactly_for_present_biomarkers(phantom):
    _, out, table = phantom
    for _, row in table.iterrows():
        masks = load_masks(out / row["mask_path"])
        assert set(masks) == set(BIOMARKERS)
        for biomarker in BIOMARKERS:
            mask = masks[biomarker]
            assert mask.dtype == bool and mask.shape == (208, 256)
            assert bool(mask.any()) == (row[biomarker] == "1"), (row["image_id"], biomarker)


def test_every_lesion_lies_in_the_model_field_of_view(phantom):
    """Labels describe what the model sees: each present finding's mask reaches into the centred
    192-px crop, less the crop's jitter (before, 10 of 80 test scans with foci had none in view)."""
    _, out, table = phantom
    margin = 8  # training crops move up to 8 columns from the centre
    left = (256 - 192) // 2 + margin
    for _, row in table.iterrows():
        masks = load_masks(out / row["mask_path"])
        for biomarker in BIOMARKERS:
            if row[biomarker] == "1":
                assert masks[biomarker][:, left:256 - left].any(), (row["image_id"], biomarker)


def test_no_patient_in_two_splits(phantom):
    _, _, table = phantom
    assert (table.groupby("patient_id")["split"].nunique() == 1).all()
    assert set(table["split"]) == {"train", "validation", "test"}
    eyes = table.groupby("patient_id")["eye"].nunique()
    assert (eyes == 2).any() and (eyes == 1).any()
    assert (table.groupby(["patient_id", "eye"]).size() > 1).any()  # several visits


def test_table_loads_with_the_validating_loader(phantom):
    _, out, _ = phantom
    loaded = load_annotations(out / "annotations.csv")
    assert len(loaded) == NUM_IMAGES
    assert loaded["drusen"].dtype == bool


def test_acuity_worsens_with_late_disease(phantom):
    _, _, table = phantom
    acuity = table["visual_acuity_logmar"].astype(float)
    late = table["stage"].str.startswith("late")
    assert acuity[late].mean() > acuity[table["stage"] == "healthy"].mean() + 0.2


def _mentions(report: str, biomarker: str) -> bool:
    entry = load_knowledge().biomarkers[biomarker]
    return any(term.lower() in report.lower() for term in [entry.name, *entry.synonyms])


def test_reports_name_findings_and_never_contradict_the_stage(phantom):
    _, _, table = phantom
    knowledge = load_knowledge()
    names = {s: knowledge.stage(s).name for s in STAGES}
    with_stage = 0
    for _, row in table.iterrows():
        report = row["report"]
        for biomarker in BIOMARKERS:
            if row[biomarker] == "1" and biomarker != "rpe_elevation":
                assert _mentions(report, biomarker), (row["image_id"], biomarker, report)
        stated = [s for s, name in names.items() if name.lower() in report.lower()
                  and not (s == "late_wet_active" and "(inactive)" in report.lower())]
        assert stated in ([], [row["stage"]]), (row["image_id"], row["stage"], report)
        with_stage += bool(stated)
        fluid = row["srf"] == "1" or row["irf"] == "1"
        says_dry = "no fluid" in report.lower() or "no subretinal or intraretinal fluid" in report.lower()
        assert says_dry != fluid, (row["image_id"], report)
    assert 0.6 * NUM_IMAGES < with_stage < NUM_IMAGES  # some reports omit the stage


def test_summary_file_matches_the_table(phantom):
    _, out, table = phantom
    summary = json.loads((out / "summary.json").read_text())
    assert summary["splits"] == {s: int((table["split"] == s).sum()) for s in ("train", "validation", "test")}
    assert summary["biomarkers"] == {b: int((table[b] == "1").sum()) for b in BIOMARKERS}


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_same_seed_gives_byte_identical_files_whatever_the_workers(tmp_path):
    first = phantom_cfg(tmp_path / "a", "dataset.phantom.num_images=90", "dataset.phantom.num_workers=1")
    second = phantom_cfg(tmp_path / "b", "dataset.phantom.num_images=90", "dataset.phantom.num_workers=2")
    other = phantom_cfg(tmp_path / "c", "dataset.phantom.num_images=90", "dataset.phantom.num_workers=1",
                        "seed=1")
    for cfg in (first, second, other):
        make_dataset(cfg)
    files_a, files_b = _files(tmp_path / "a" / "phantom"), _files(tmp_path / "b" / "phantom")
    assert len(files_a) == 2 * 90 + 2 and files_a == files_b
    files_c = _files(tmp_path / "c" / "phantom")
    assert files_c["images/phantom_00000.png"] != files_a["images/phantom_00000.png"]


@pytest.mark.slow
def test_default_prevalence_at_full_size(tmp_path):
    """The acceptance run: 3,000 scans, every stage >= 5%, every biomarker present and absent."""
    summary = make_dataset(phantom_cfg(tmp_path))
    assert summary["num_images"] == 3000
    assert all(count >= 150 for count in summary["stages"].values()), summary["stages"]
    assert all(0 < count < 3000 for count in summary["biomarkers"].values()), summary["biomarkers"]
