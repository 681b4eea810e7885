"""Reading an annotation table's CSV text into an all-string table, checking its structure.

Everything that can make a table be misread before a single value is looked at stops here with
an `AnnotationError` naming the file and line: an empty file, a header with no rows, a workbook
or binary file saved as `.csv`, text that is not UTF-8, a table separated by `;` or tabs, an
unbalanced quote, duplicate or nameless columns, a header repeated inside the table, and rows
with fewer fields than the header (a truncated row, whose missing cells would otherwise read as
empty, i.e. "absent") or more (an unquoted comma), and a last row cut off right after a comma
(an empty last cell with no line break after it). Rows whose cells are all empty (spreadsheet
exports often end with some) are skipped with a warning that names their lines.

Cell values are stripped of surrounding whitespace (and invisible byte-order marks). Each row
keeps the file line it starts on (`table.attrs["line_numbers"]`), so later checks name the right
line even when a quoted report spans several lines.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

import pandas as pd

from dataset.annotation_checks import REQUIRED_COLUMNS, missing_column_problems
from dataset.errors import InputError

logger = logging.getLogger(__name__)

MAX_LISTED = 10
LINE_NUMBERS = "line_numbers"
_WORKBOOK_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")  # .xlsx (zip) and legacy .xls
# Stripped from both ends of every cell: whitespace (also non-breaking) and the invisible byte-order
# mark and zero-width space that a table saved twice or pasted from a web page carries.
_BLANK = " \t\r\n\u00a0\ufeff\u200b"


class AnnotationError(InputError):
    """The annotation table is invalid; the message names the file, rows and fix."""


def _listed(items: list[str]) -> str:
    more = f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return ", ".join(items[:MAX_LISTED]) + more


def _decode(path: Path, data: bytes) -> str:
    if not data.strip():
        raise AnnotationError(f"{path}: the file is empty; an annotation table needs a header line naming "
                              "its columns and one row per image (see the README, 'the annotation format')")
    if data.startswith(_WORKBOOK_MAGIC):
        raise AnnotationError(f"{path}: this is a spreadsheet workbook, not CSV text; export it as "
                              "'CSV UTF-8 (comma delimited)'")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # spreadsheet "Unicode text": UTF-16 with a BOM
        try:
            return _decode(path, data.decode("utf-16").encode("utf-8"))
        except UnicodeError:
            raise AnnotationError(f"{path}: not readable as UTF-16 text; save the table as CSV UTF-8") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise AnnotationError(f"{path}: line {line} is not UTF-8 text (byte {data[err.start]:#04x}); "
                              "save the table as CSV UTF-8") from None
    if "\x00" in text:
        line = text[:text.index("\x00")].count("\n") + 1
        raise AnnotationError(f"{path}: line {line} holds a NUL byte; this is not a CSV text file")
    return text


def _check_header(path: Path, header: list[str], rows: list[list[str]]) -> list[str]:
    """Problems with the header: wrong delimiter, duplicate or empty names (empty-named columns
    with no values, from a trailing delimiter, are allowed and dropped by the caller)."""
    if len(header) == 1:
        for delimiter, name in ((";", "semicolons"), ("\t", "tabs")):
            if delimiter in header[0]:
                return [f"the header is separated by {name}, not commas; save the table as comma-separated CSV"]
    problems = missing_column_problems(header)
    if problems and not set(header) & set(REQUIRED_COLUMNS):
        return problems  # the first line is no header: nothing else about it is worth saying
    positions: dict[str, list[int]] = {}
    for number, name in enumerate(header, start=1):
        positions.setdefault(name, []).append(number)
        if not name and any(number <= len(r) and r[number - 1] for r in rows):
            problems.append(f"column {number} has no name in the header but holds values; name it or remove it")
    for name, numbers in positions.items():
        if name and len(numbers) > 1:
            problems.append(f"column {name!r} appears {len(numbers)} times (columns "
                            f"{', '.join(map(str, numbers))}); keep one")
    return problems


def read_annotation_csv(path: str | Path, data: bytes | None = None) -> pd.DataFrame:
    """Read the table as strings, one row per image, with structural checks.

    Args:
        path: the CSV file (must exist).
        data: the file's bytes when the caller has read them already (`path` then only names it).

    Returns:
        All-string cells, stripped; `attrs["line_numbers"]` holds each row's first file line.

    Raises:
        AnnotationError: any structural problem listed in the module docstring.
    """
    path = Path(path)
    text = _decode(path, path.read_bytes() if data is None else data)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[tuple[int, list[str]]] = []
    end = 0
    try:
        for fields in reader:
            start, end = end + 1, reader.line_num
            if fields:  # a blank line is no row
                records.append((start, [f.strip(_BLANK) for f in fields]))
    except csv.Error as err:
        raise AnnotationError(f"{path}: line {reader.line_num}: not valid CSV ({err}); look for an unbalanced "
                              "double quote (a report containing \" must be quoted, with inner quotes "
                              "doubled)") from None
    if not records:
        raise AnnotationError(f"{path}: the file holds no header line")
    (_, header), body = records[0], records[1:]
    problems = _check_header(path, header, [r for _, r in body])
    if problems:
        raise AnnotationError(f"{path}: invalid annotation table:\n- " + "\n- ".join(problems))
    repeated = [f"line {line}" for line, r in body if r == header]
    if repeated:  # two exports joined into one file
        raise AnnotationError(f"{path}: {_listed(repeated)} repeat(s) the header line; were two tables "
                              "joined? Remove the repeated header line(s)")
    blank = [line for line, r in body if not any(r)]
    if blank:
        logger.warning("%s: skipped %d row(s) with every cell empty (%s)", path, len(blank),
                       _listed([f"line {n}" for n in blank]))
    body = [(line, r) for line, r in body if any(r)]
    if not body:
        raise AnnotationError(f"{path}: the table has a header but no rows; add one row per image")
    short = [f"line {line} ({len(r)} of {len(header)})" for line, r in body if len(r) < len(header)]
    long = [f"line {line} ({len(r)} for {len(header)})" for line, r in body
            if len(r) > len(header) and any(r[len(header):])]
    if short:
        problems.append(f"row(s) with fewer fields than the header, e.g. a truncated row: {_listed(short)}; "
                        "a missing cell is never read as 'absent': complete or remove these rows")
    if long:
        problems.append(f"row(s) with more fields than the header: {_listed(long)}; quote any text "
                        "containing commas (e.g. the report)")
    last_line, last = body[-1]
    if not text.endswith(("\n", "\r")) and len(last) == len(header) and header[-1] and not last[-1]:
        # A file cut off right after a comma keeps its field count; its last cell reads as empty.
        problems.append(f"line {last_line} ends the file in an empty {header[-1]!r} cell with no line break "
                        "after it: the file looks cut off; complete that row (or end the file with a line "
                        "break if the cell is meant to be empty)")
    if problems:
        raise AnnotationError(f"{path}: invalid annotation table:\n- " + "\n- ".join(problems))
    keep = [i for i, name in enumerate(header) if name]
    table = pd.DataFrame([[r[i] if i < len(r) else "" for i in keep] for _, r in body],
                         columns=[header[i] for i in keep], dtype=str)
    table.attrs[LINE_NUMBERS] = [line for line, _ in body]
    return table
