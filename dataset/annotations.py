"""The annotation table: one documented format for real data and the phantom, and its loader.

See docs/contracts.md (section 1) and the README for the format. Loading validates everything
and stops with an `AnnotationError` naming the file, rows and columns at fault; nothing is
dropped silently.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from dataset.clinical import (
    BIOMARKERS,
    REFERRALS,
    STAGES,
    TREATMENT_REFERRALS,
    load_knowledge,
    referral_from_findings,
    stage_from_findings,
    treatment_referral_from_findings,
)
from dataset.images import ImageReadError, check_image_readable

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("image_id", "image_path", "patient_id", "eye", *BIOMARKERS)
SPLITS = ("train", "validation", "test")
EYES = ("left", "right")
SEXES = ("female", "male")
LABEL_COLUMNS = {"stage": STAGES, "referral": REFERRALS, "referral_treatment": TREATMENT_REFERRALS}
_TRUE = {"1", "1.0", "true", "yes", "y", "present"}
_FALSE = {"0", "0.0", "false", "no", "n", "absent", ""}
MAX_LISTED = 10


class AnnotationError(ValueError):
    """The annotation table is invalid; the message names the file, rows and fix."""


def _rows(df: pd.DataFrame, mask: pd.Series | Iterable[bool]) -> str:
    """CSV line numbers (header is line 1) and image ids of the flagged rows, abbreviated."""
    flagged = df.index[list(mask)]
    shown = ", ".join(f"line {i + 2} ({df.at[i, 'image_id']})" for i in flagged[:MAX_LISTED])
    more = f" and {len(flagged) - MAX_LISTED} more" if len(flagged) > MAX_LISTED else ""
    return shown + more


def load_annotations(path: str | Path, images_dir: str | Path | None = None,
                     check_images: bool = True) -> pd.DataFrame:
    """Read and validate an annotation table.

    Args:
        path: the CSV file.
        images_dir: folder that relative `image_path`s start from; default: the table's folder.
        check_images: verify every image exists and is not corrupt.

    Returns:
        The table with biomarker columns as bool, `stage`/`referral`/`referral_treatment` filled
        by the clinical rules where absent, and an absolute `image_file` column.

    Raises:
        AnnotationError: missing columns, unknown labels, duplicate ids, a patient in two splits,
            or missing/corrupt images; the message names the rows.
    """
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"annotation table not found: {path}. Generate the embedded phantom "
                              "with `python run/make_dataset.py` or set paths.annotations_file.")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise AnnotationError(f"{path}: not a readable CSV table ({err})") from err
    df.columns = [c.strip() for c in df.columns]
    problems = validate_annotations(df)
    if problems:
        raise AnnotationError(f"{path}: invalid annotation table:\n- " + "\n- ".join(problems))
    df = _typed(df)
    root = Path(images_dir) if images_dir else path.parent
    df["image_file"] = [str(p if Path(p).is_absolute() else root / p) for p in df["image_path"]]
    if check_images:
        _check_images(path, df)
    return df


def validate_annotations(df: pd.DataFrame) -> list[str]:
    """Every problem in a raw (all-string) table, each naming its rows; empty when valid."""
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        return [f"missing required column(s): {', '.join(missing)} "
                "(see docs/contracts.md, section 1, for the format)"]
    problems: list[str] = []
    for column in ("image_id", "image_path", "patient_id"):
        empty = df[column].str.strip() == ""
        if empty.any():
            problems.append(f"empty {column} at {_rows(df, empty)}")
    duplicated = df["image_id"].duplicated(keep=False)
    if duplicated.any():
        problems.append(f"duplicate image_id at {_rows(df, duplicated)}")
    problems += _check_values(df, "eye", EYES, allow_empty=False)
    if "sex" in df.columns:
        problems += _check_values(df, "sex", SEXES)
    if "split" in df.columns:
        problems += _check_values(df, "split", SPLITS)
        problems += _check_patient_splits(df)
    for column, allowed in LABEL_COLUMNS.items():
        if column in df.columns:
            problems += _check_values(df, column, allowed)
    for biomarker in BIOMARKERS:
        bad = ~df[biomarker].str.strip().str.lower().isin(_TRUE | _FALSE)
        if bad.any():
            problems.append(f"column {biomarker!r} must be 0/1 (or yes/no) at {_rows(df, bad)}")
    problems += _check_attributes(df)
    for column in ("age", "visual_acuity_logmar", "quality", "visit"):
        if column in df.columns:
            numeric = pd.to_numeric(df[column].replace("", None), errors="coerce")
            bad = numeric.isna() & (df[column].str.strip() != "")
            if bad.any():
                problems.append(f"column {column!r} must be numeric at {_rows(df, bad)}")
    return problems


def _check_values(df: pd.DataFrame, column: str, allowed: Iterable[str], allow_empty: bool = True) -> list[str]:
    allowed = set(allowed)
    values = df[column].str.strip()
    bad = ~values.isin(allowed | ({""} if allow_empty else set()))
    if not bad.any():
        return []
    unknown = sorted(set(values[bad]))[:MAX_LISTED]
    return [f"unknown {column} label(s) {unknown} at {_rows(df, bad)}; allowed: {sorted(allowed)}"]


def _check_attributes(df: pd.DataFrame) -> list[str]:
    problems = []
    for biomarker in load_knowledge().biomarkers.values():
        for attribute, allowed in biomarker.attributes.items():
            column = biomarker.attribute_column(attribute)
            if column not in df.columns:
                continue
            allowed_text = {str(v).lower() for v in allowed} | {""}
            bad = ~df[column].str.strip().str.lower().isin(allowed_text)
            if bad.any():
                problems.append(f"unknown {column} value(s) {sorted(set(df[column][bad]))[:MAX_LISTED]} "
                                f"at {_rows(df, bad)}; allowed: {allowed}")
    return problems


def _check_patient_splits(df: pd.DataFrame) -> list[str]:
    assigned = df[df["split"].str.strip() != ""]
    splits_per_patient = assigned.groupby("patient_id")["split"].nunique()
    leaking = splits_per_patient[splits_per_patient > 1].index
    if len(leaking) == 0:
        return []
    mask = df["patient_id"].isin(leaking)
    names = ", ".join(map(str, list(leaking)[:MAX_LISTED]))
    return [f"patient(s) {names} appear in more than one split (splits must be by patient) at {_rows(df, mask)}"]


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    for biomarker in BIOMARKERS:
        df[biomarker] = df[biomarker].str.strip().str.lower().isin(_TRUE)
    for column in ("age", "visual_acuity_logmar", "quality"):
        if column in df.columns:
            df[column] = pd.to_numeric(df[column].replace("", None), errors="coerce")
    if "visit" in df.columns:
        df["visit"] = pd.to_numeric(df["visit"].replace("", None), errors="coerce").astype("Int64")
    derivations = {"stage": stage_from_findings, "referral": referral_from_findings,
                   "referral_treatment": treatment_referral_from_findings}
    records = df.to_dict("records")
    for column, rule in derivations.items():
        derived = [rule(r) for r in records]
        if column not in df.columns:
            df[column] = derived
        else:
            df[column] = [given.strip() or d for given, d in zip(df[column], derived)]
    return df


def _check_images(path: Path, df: pd.DataFrame) -> None:
    failures = []
    for row, image_file in zip(df.index, df["image_file"]):
        try:
            check_image_readable(image_file)
        except ImageReadError as err:
            failures.append(f"line {row + 2} ({df.at[row, 'image_id']}): {err}")
    if failures:
        more = f"\n  ... and {len(failures) - MAX_LISTED} more" if len(failures) > MAX_LISTED else ""
        raise AnnotationError(f"{path}: {len(failures)} image(s) missing or unreadable:\n  "
                              + "\n  ".join(failures[:MAX_LISTED]) + more)


def split_of(df: pd.DataFrame, split: str) -> pd.DataFrame:
    """Rows of one split; raises if the table has no split column or the split is empty."""
    if "split" not in df.columns:
        raise AnnotationError("the annotation table has no 'split' column; add one (train/validation/test)")
    if split not in SPLITS:
        raise AnnotationError(f"unknown split {split!r}; known: {SPLITS}")
    subset = df[df["split"] == split]
    if subset.empty:
        raise AnnotationError(f"the annotation table has no rows in split {split!r}")
    return subset.reset_index(drop=True)
