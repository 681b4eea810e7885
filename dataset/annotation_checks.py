"""Checks of an annotation table that look across columns: column names (a misspelt column is
named with the closest known one, by `difflib`), and labels given in the table that the findings
contradict. Column problems that would change what the table means are errors; a misspelt
optional column and contradicting labels are warnings (the table is still usable as written).
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Iterable, Mapping

import pandas as pd

from dataset.clinical import (
    BIOMARKERS,
    load_knowledge,
    referral_from_findings,
    stage_from_findings,
    treatment_referral_from_findings,
)

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("image_id", "image_path", "patient_id", "eye", *BIOMARKERS)
LABEL_RULES: dict[str, Callable[[Mapping], str]] = {
    "stage": stage_from_findings, "referral": referral_from_findings,
    "referral_treatment": treatment_referral_from_findings}
OPTIONAL_COLUMNS = ("split", *LABEL_RULES, "visit", "age", "sex", "visual_acuity_logmar", "quality",
                    "report", "mask_path")
EXAMPLES = 3


def attribute_columns() -> list[str]:
    """`<biomarker>_<attribute>` columns the clinical knowledge file defines."""
    return [b.attribute_column(a) for b in load_knowledge().biomarkers.values() for a in b.attributes]


def known_columns() -> list[str]:
    return [*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, *attribute_columns()]


def closest(name: str, candidates: Iterable[str], cutoff: float = 0.75) -> str | None:
    """The candidate closest to `name` (case-insensitive), or None when none is close."""
    candidates = list(candidates)
    lowered = {c.lower(): c for c in candidates}
    if name.lower() in lowered:
        return lowered[name.lower()]
    match = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=cutoff)
    return lowered[match[0]] if match else None


def missing_column_problems(columns: list[str]) -> list[str]:
    """An error for missing required columns, naming any present column that looks like one."""
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if not missing:
        return []
    unknown = [c for c in columns if c not in known_columns()]
    hints = [f"{c!r} for {m!r}" for m in missing if (c := closest(m, unknown))]
    hint = f"; did you mean {', '.join(hints)}?" if hints else ""
    if len(missing) == len(REQUIRED_COLUMNS):
        hint += f" (the first line must be the header; it reads {columns[:4]})"
    return [f"missing required column(s): {', '.join(missing)}{hint} "
            "(see docs/contracts.md, section 1, for the format)"]


def warn_unknown_columns(path: object, columns: list[str]) -> list[str]:
    """Warn about each column close to a known name (likely misspelt; it is ignored).

    Returns:
        The warning messages (also logged).
    """
    known = known_columns()
    messages = []
    for column in columns:
        if column in known:
            continue
        guess = closest(column, known)
        if guess is not None:
            messages.append(f"{path}: column {column!r} is not a known column and is ignored; "
                            f"did you mean {guess!r}?")
        else:
            logger.info("%s: extra column %r is kept but not used", path, column)
    for message in messages:
        logger.warning(message)
    return messages


def warn_contradicting_labels(path: object, table: pd.DataFrame, given: Mapping[str, pd.Series],
                              lines: list[int]) -> list[str]:
    """Warn, with the count, where a given stage or referral differs from what the findings imply,
    and where an attribute is given for a finding marked absent.

    Args:
        path: the table (for the message).
        table: the typed table (boolean biomarkers, labels filled in).
        given: label column -> the raw given values ("" where not given).
        lines: each row's file line.

    Returns:
        The warning messages (also logged).
    """
    messages = []
    records = table.to_dict("records")
    for column, values in given.items():
        rule = LABEL_RULES[column]
        differ = [(i, value, rule(r)) for i, (value, r) in enumerate(zip(values, records))
                  if value and value != rule(r)]
        if differ:
            shown = "; ".join(f"line {lines[i]} ({records[i]['image_id']}): given {v}, findings imply {d}"
                              for i, v, d in differ[:EXAMPLES])
            messages.append(f"{path}: {len(differ)} row(s) give a {column} that their findings contradict "
                            f"(e.g. {shown}); the given {column} is kept - check the findings or the label")
    orphans = []
    for biomarker in load_knowledge().biomarkers.values():
        for attribute in biomarker.attributes:
            column = biomarker.attribute_column(attribute)
            if column in table.columns:
                pairs = enumerate(zip(table[biomarker.id], table[column]))
                orphans += [(i, column) for i, (present, value) in pairs if not present and str(value).strip()]
    if orphans:
        shown = ", ".join(f"line {lines[i]} ({c})" for i, c in orphans[:EXAMPLES])
        messages.append(f"{path}: {len(orphans)} attribute value(s) given for a finding marked absent "
                        f"(e.g. {shown}); they are not used")
    for message in messages:
        logger.warning(message)
    return messages
