"""The annotation table: one documented format for real data and the phantom, and its loader.

See docs/contracts.md (section 1) and the README for the format. Loading validates everything
and stops with an `AnnotationError` naming the file, rows and columns at fault; nothing is
dropped silently. An empty cell is never read as a value: an empty required cell (ids, path,
eye, any biomarker) or an empty `split` is an error naming the line (a biomarker is absent only
when the table says so: 0 / no / false / absent). The structure of the file is checked first
(`dataset.annotation_csv`); misspelt columns and labels the findings contradict are warned
about (`dataset.annotation_checks`). Label values are read whatever their case and word separators
and stored in their canonical spelling (`Left` -> `left`, `crora` -> `cRORA`, `Late wet-active` ->
`late_wet_active`; `OD`/`OS` -> `right`/`left`). An empty attribute cell of a present finding is
unknown, like a missing attribute column, never a value that changes the derived stage.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from dataset.annotation_checks import (
    LABEL_RULES,
    REQUIRED_COLUMNS,
    missing_column_problems,
    warn_contradicting_labels,
    warn_unknown_columns,
)
from dataset.annotation_csv import LINE_NUMBERS, AnnotationError, read_annotation_csv
from dataset.clinical import BIOMARKERS, REFERRALS, STAGES, TREATMENT_REFERRALS, load_knowledge
from dataset.images import ImageReadError, check_image_readable
from dataset.splits import SPLITS

logger = logging.getLogger(__name__)

__all__ = ["AnnotationError", "REQUIRED_COLUMNS", "load_annotations", "validate_annotations"]

EYES = ("left", "right")
SEXES = ("female", "male")
LABEL_COLUMNS = {"stage": STAGES, "referral": REFERRALS, "referral_treatment": TREATMENT_REFERRALS}
# Other spellings clinics use for a label (compared after `_label_key`): OD/OS are the right/left eye.
LABEL_ALIASES = {"eye": {"od": "right", "os": "left", "r": "right", "l": "left"},
                 "sex": {"f": "female", "m": "male"}}
_TRUE = {"1", "1.0", "true", "yes", "y", "present"}
_FALSE = {"0", "0.0", "false", "no", "n", "absent"}
# Cells that say "no value" in some export (R, pandas, spreadsheets): never read as absent.
_MISSING = {"", "nan", "na", "n/a", "null", "none", "missing", "unknown", "?", "-"}
# Plausible ranges of the numeric columns (inclusive).
RANGES = {"age": (0, 130), "visual_acuity_logmar": (-0.5, 4.0), "quality": (0, 100), "visit": (0, 10_000)}
MAX_LISTED = 10


def _line(df: pd.DataFrame, position: int) -> int:
    """The file line of a row (header is line 1); tables not read from a file count from 2."""
    lines = df.attrs.get(LINE_NUMBERS)
    return lines[position] if lines and len(lines) == len(df) else position + 2


def _rows(df: pd.DataFrame, mask: pd.Series | Iterable[bool]) -> str:
    """File line numbers and image ids of the flagged rows, abbreviated."""
    flagged = [i for i, bad in enumerate(list(mask)) if bad]
    shown = ", ".join(f"line {_line(df, i)} ({df['image_id'].iloc[i] or '-'})" for i in flagged[:MAX_LISTED])
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
        AnnotationError: an empty, header-only or structurally broken file (truncated rows, wrong
            delimiter, bad quoting, not UTF-8), missing columns, empty required cells or splits,
            unknown labels, duplicate ids, a patient in two splits, or missing/corrupt images; the
            message names the lines.

    Warns (logging): misspelt optional columns (with the closest known name), given labels that
    the findings contradict (with the count), attributes of absent findings, all-empty rows.
    """
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"annotation table not found: {path}. Generate the embedded phantom "
                              "with `python run/make_dataset.py` or set paths.annotations_file.")
    df = _validated_table(path)
    root = Path(images_dir) if images_dir else path.parent
    df["image_file"] = [_image_file(root, p) for p in df["image_path"]]
    if check_images:
        _check_images(path, df)
    df.attrs.pop(LINE_NUMBERS, None)  # the loaded table carries no bookkeeping
    return df


# Validated tables by file, with the digest of the bytes they were read from: the steps of one
# process (`make pipeline`, dataset.step_runner) read the same table a dozen times, 2-4 s each.
_VALIDATED: dict[str, tuple[str, pd.DataFrame]] = {}


def _validated_table(path: Path) -> pd.DataFrame:
    """The table read, validated and typed (a copy; its warnings are logged when the file's content
    is first read in this process). Only the file's bytes decide the result, so an unchanged file is
    validated once; the images are checked on every load."""
    data = path.read_bytes()
    digest, key = hashlib.sha256(data).hexdigest(), str(path.resolve())
    cached = _VALIDATED.get(key)
    if cached is None or cached[0] != digest:
        df = read_annotation_csv(path, data)
        problems = validate_annotations(df)
        if problems:
            raise AnnotationError(f"{path}: invalid annotation table:\n- " + "\n- ".join(problems))
        warn_unknown_columns(path, list(df.columns))
        lines = [_line(df, i) for i in range(len(df))]
        given = {c: df[c].map(_label_key).map(_spellings(c)) for c in LABEL_RULES if c in df.columns}
        df = _typed(df)
        warn_contradicting_labels(path, df, given, lines)
        _VALIDATED[key] = (digest, df)
    return _VALIDATED[key][1].copy(deep=True)


def _image_file(root: Path, image_path: str) -> str:
    """The scan's file: `image_path` under `root` unless absolute; a Windows path written with
    backslashes (`images\\scan1.png`) is read with forward slashes where that file exists."""
    path = Path(image_path)
    if "\\" in image_path and not (root / path).exists():
        windows = Path(image_path.replace("\\", "/"))
        if (root / windows).exists():
            path = windows
    return str(path if path.is_absolute() else root / path)


def validate_annotations(df: pd.DataFrame) -> list[str]:
    """Every problem in a raw (all-string) table, each naming its rows; empty when valid."""
    problems = missing_column_problems(list(df.columns))
    if problems:
        return problems
    if df.empty:
        return ["the table has a header but no rows; add one row per image"]
    for column in ("image_id", "image_path", "patient_id", "eye"):
        empty = df[column].str.strip() == ""
        if empty.any():
            problems.append(f"empty {column} at {_rows(df, empty)}; every row needs one")
    duplicated = df["image_id"].duplicated(keep=False)
    if duplicated.any():
        problems.append(f"duplicate image_id at {_rows(df, duplicated)}")
    problems += _check_values(df, "eye", EYES)
    if "sex" in df.columns:
        problems += _check_values(df, "sex", SEXES)
    if "split" in df.columns:
        empty = df["split"].str.strip() == ""
        if empty.any():
            problems.append(f"empty split at {_rows(df, empty)}; give every row train, validation or test "
                            "(or leave out the split column, and the scripts that need splits say so)")
        problems += _check_values(df, "split", SPLITS)
        problems += _check_patient_splits(df)
    for column, allowed in LABEL_COLUMNS.items():
        if column in df.columns:
            problems += _check_values(df, column, allowed)
    problems += _check_biomarkers(df)
    problems += _check_attributes(df)
    problems += _check_numbers(df)
    return problems


def _check_biomarkers(df: pd.DataFrame) -> list[str]:
    problems, empty_cells = [], []
    for biomarker in BIOMARKERS:
        values = df[biomarker].str.strip().str.lower()
        missing = values.isin(_MISSING)
        empty_cells += [(i, biomarker) for i in range(len(df)) if missing.iloc[i]]
        bad = ~values.isin(_TRUE | _FALSE) & ~missing
        if bad.any():
            problems.append(f"column {biomarker!r} must be 0/1 (or yes/no) at {_rows(df, bad)}; "
                            f"found {sorted(set(df[biomarker][bad]))[:MAX_LISTED]}")
    if empty_cells:
        shown = ", ".join(f"line {_line(df, i)} ({df['image_id'].iloc[i] or '-'}): {b}"
                          for i, b in empty_cells[:MAX_LISTED])
        more = f" and {len(empty_cells) - MAX_LISTED} more" if len(empty_cells) > MAX_LISTED else ""
        problems.insert(0, f"{len(empty_cells)} empty or missing biomarker cell(s) at {shown}{more}; "
                           "an empty cell is not read as absent: write 0 (or no) for an absent finding")
    return problems


def _check_numbers(df: pd.DataFrame) -> list[str]:
    problems = []
    for column, (low, high) in RANGES.items():
        if column not in df.columns:
            continue
        text = df[column].str.strip()
        numeric = pd.to_numeric(text.where(text != "", None), errors="coerce")
        bad = numeric.isna() & (text != "")
        if bad.any():
            problems.append(f"column {column!r} must be numeric at {_rows(df, bad)}")
        out = numeric.notna() & ~numeric.between(low, high)
        if column == "visit":
            out |= numeric.notna() & (numeric % 1 != 0)
        if out.any():
            kind = "a whole number " if column == "visit" else ""
            problems.append(f"column {column!r} must be {kind}between {low} and {high} at {_rows(df, out)}")
    return problems


def _check_values(df: pd.DataFrame, column: str, allowed: Iterable[str]) -> list[str]:
    """Unknown labels (compared as `_label_key`; empty cells are checked by the caller)."""
    bad = ~df[column].map(_label_key).isin(_spellings(column))
    if not bad.any():
        return []
    unknown = sorted(set(df[column][bad]))[:MAX_LISTED]
    return [f"unknown {column} label(s) {unknown} at {_rows(df, bad)}; allowed: {sorted(allowed)}"]


def _check_attributes(df: pd.DataFrame) -> list[str]:
    problems = []
    for column, allowed in _attribute_values().items():
        if column not in df.columns:
            continue
        bad = ~df[column].map(_label_key).isin(_spellings(column))
        if bad.any():
            problems.append(f"unknown {column} value(s) {sorted(set(df[column][bad]))[:MAX_LISTED]} "
                            f"at {_rows(df, bad)}; allowed: {allowed}")
    return problems


def _check_patient_splits(df: pd.DataFrame) -> list[str]:
    assigned = df.assign(split=df["split"].map(_label_key))
    assigned = assigned[assigned["split"] != ""]
    splits_per_patient = assigned.groupby("patient_id")["split"].nunique()
    leaking = splits_per_patient[splits_per_patient > 1].index
    if len(leaking) == 0:
        return []
    mask = df["patient_id"].isin(leaking)
    names = ", ".join(map(str, list(leaking)[:MAX_LISTED]))
    return [f"patient(s) {names} appear in more than one split (splits must be by patient) at {_rows(df, mask)}"]


def _label_key(text: str) -> str:
    """A label as compared: case, surrounding space and word separators do not matter, so "Late wet
    active", "late-dry" and " TRAIN " are read as late_wet_active, late_dry and train."""
    return re.sub(r"[\s_-]+", " ", str(text).strip().lower())


def _attribute_values() -> dict[str, list]:
    """`<biomarker>_<attribute>` column -> its allowed values (dataset/clinical/amd_oct.yaml)."""
    return {b.attribute_column(a): values for b in load_knowledge().biomarkers.values()
            for a, values in b.attributes.items()}


def _spellings(column: str) -> dict[str, str]:
    """Every accepted spelling (as `_label_key`) -> the canonical value of a label or attribute
    column; "" (not given) stays "". Boolean attributes read like the biomarker cells (1/yes/true)
    and are stored as true/false, as the phantom writes them."""
    allowed = {"eye": EYES, "sex": SEXES, "split": SPLITS, **LABEL_COLUMNS}.get(column)
    if allowed is not None:
        return {"": "", **{_label_key(a): a for a in allowed}, **LABEL_ALIASES.get(column, {})}
    spellings = {"": ""}
    for value in _attribute_values()[column]:
        if isinstance(value, bool):
            spellings.update({key: str(value).lower() for key in (_TRUE if value else _FALSE)})
        else:
            spellings[_label_key(value)] = str(value)
    return spellings


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    lines = df.attrs.get(LINE_NUMBERS)
    df = df.copy()
    df.attrs.pop(LINE_NUMBERS, None)
    for biomarker in BIOMARKERS:
        df[biomarker] = df[biomarker].str.strip().str.lower().isin(_TRUE)
    for column in ("eye", "sex", "split", *LABEL_COLUMNS, *_attribute_values()):
        if column in df.columns:
            df[column] = df[column].map(_label_key).map(_spellings(column))
    for column in ("age", "visual_acuity_logmar", "quality"):
        if column in df.columns:
            df[column] = pd.to_numeric(df[column].replace("", None), errors="coerce")
    if "visit" in df.columns:
        df["visit"] = pd.to_numeric(df["visit"].replace("", None), errors="coerce").astype("Int64")
    records = df.to_dict("records")
    for column, rule in LABEL_RULES.items():
        derived = [rule(r) for r in records]
        if column not in df.columns:
            df[column] = derived
        else:
            df[column] = [given or d for given, d in zip(df[column], derived)]
    if lines is not None:
        df.attrs[LINE_NUMBERS] = lines
    return df


def _check_images(path: Path, df: pd.DataFrame) -> None:
    failures = []
    for position, image_file in enumerate(df["image_file"]):
        try:
            check_image_readable(image_file)
        except ImageReadError as err:
            failures.append(f"line {_line(df, position)} ({df['image_id'].iloc[position]}): {err}")
    if failures:
        more = f"\n  ... and {len(failures) - MAX_LISTED} more" if len(failures) > MAX_LISTED else ""
        raise AnnotationError(f"{path}: {len(failures)} image(s) missing or unreadable:\n  "
                              + "\n  ".join(failures[:MAX_LISTED]) + more)
