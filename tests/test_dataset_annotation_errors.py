"""Malformed annotation tables, by class: each is refused with a message naming the line (or
loads with a warning, for a usable table), never read as healthy scans in silence."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from support.tables import write_table

from dataset.annotations import AnnotationError, load_annotations
from dataset.clinical import load_knowledge

ROOT = Path(__file__).resolve().parents[1]


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n")


def _set_cell(path: Path, row: int, column: str, value: str) -> None:
    """Set one cell (row 0 = first data row) by editing the CSV text, so nothing is re-quoted."""
    lines = _lines(path)
    header = lines[0].split(",")
    cells = lines[row + 1].split(",")
    cells[header.index(column)] = value
    lines[row + 1] = ",".join(cells)
    _write(path, lines)


def _rename_column(path: Path, old: str, new: str) -> None:
    lines = _lines(path)
    lines[0] = ",".join(new if c == old else c for c in lines[0].split(","))
    _write(path, lines)


# (case id, how to break the table, pattern the error must match)
ERRORS = [
    ("empty_file", lambda p: p.write_text(""), r"the file is empty"),
    ("whitespace_file", lambda p: p.write_text(" \n\n  \n"), r"the file is empty"),
    ("header_only", lambda p: _write(p, _lines(p)[:1]), r"header but no rows"),
    ("header_and_blank_lines", lambda p: _write(p, _lines(p)[:1] + ["", ""]), r"header but no rows"),
    ("header_and_empty_rows", lambda p: _write(p, _lines(p)[:1] + ["," * 20] * 2), r"header but no rows"),
    ("truncated_last_row", lambda p: p.write_text(p.read_text()[: p.read_text().rstrip().rfind(",0,0")]),
     r"fewer fields than the header.*line 7"),
    ("truncated_middle_row", lambda p: _write(p, [*_lines(p)[:3], ",".join(_lines(p)[3].split(",")[:9]),
                                                  *_lines(p)[4:]]), r"fewer fields.*line 4 \(9 of"),
    ("empty_biomarker", lambda p: _set_cell(p, 2, "srf", ""),
     r"empty or missing biomarker cell\(s\) at line 4 \(img2\): srf.*not read as absent"),
    ("nan_biomarker", lambda p: _set_cell(p, 3, "drusen", "NaN"), r"missing biomarker cell.*line 5 \(img3\): drusen"),
    ("na_biomarker", lambda p: _set_cell(p, 0, "irf", "NA"), r"missing biomarker cell.*line 2 \(img0\): irf"),
    ("none_biomarker", lambda p: _set_cell(p, 0, "shrm", "None"), r"missing biomarker cell.*line 2 \(img0\): shrm"),
    ("bad_biomarker", lambda p: _set_cell(p, 1, "ped", "2"), r"'ped' must be 0/1.*line 3 \(img1\)"),
    ("empty_split", lambda p: _set_cell(p, 1, "split", ""), r"empty split at line 3 \(img1\)"),
    ("empty_eye", lambda p: _set_cell(p, 4, "eye", ""), r"empty eye at line 6 \(img4\)"),
    ("empty_patient", lambda p: _set_cell(p, 4, "patient_id", ""), r"empty patient_id at line 6 \(img4\)"),
    ("empty_image_id", lambda p: _set_cell(p, 2, "image_id", ""), r"empty image_id at line 4"),
    ("empty_image_path", lambda p: _set_cell(p, 2, "image_path", ""), r"empty image_path at line 4 \(img2\)"),
    ("unknown_split", lambda p: _set_cell(p, 1, "split", "training"), r"unknown split label\(s\) \['training'\]"),
    ("extra_field", lambda p: _write(p, [*_lines(p)[:2], _lines(p)[2] + ",oops", *_lines(p)[3:]]),
     r"more fields than the header: line 3"),
    ("semicolons", lambda p: p.write_text(p.read_text().replace(",", ";")), r"separated by semicolons"),
    ("tabs", lambda p: p.write_text(p.read_text().replace(",", "\t")), r"separated by tabs"),
    ("unbalanced_quote", lambda p: _set_cell(p, 2, "image_path", '"images/img2.png'), r"line \d+: not valid CSV"),
    ("duplicate_column", lambda p: _rename_column(p, "ped", "drusen"), r"column 'drusen' appears 2 times \(columns \d+, \d+\)"),
    ("nameless_column", lambda p: _write(p, [_lines(p)[0] + ","] + [ln + ",x" for ln in _lines(p)[1:]]),
     r"has no name in the header but holds values"),
    ("workbook", lambda p: p.write_bytes(b"PK\x03\x04" + b"\x00" * 40), r"spreadsheet workbook"),
    ("binary", lambda p: p.write_bytes(b"image_id,x\n\x00\x01\x02"), r"NUL byte"),
    ("latin1", lambda p: p.write_bytes(p.read_bytes().replace(b"img3,", b"img\xe93,")), r"line 5 is not UTF-8"),
    ("no_header", lambda p: _write(p, _lines(p)[1:]), r"first line must be the header"),
    ("misspelt_required", lambda p: _rename_column(p, "drusen", "drusn"),
     r"missing required column\(s\): drusen; did you mean 'drusn'"),
    ("capitalised_required", lambda p: _rename_column(p, "eye", "Eye"), r"missing required column\(s\): eye; did you mean 'Eye'"),
    ("visit_fraction", lambda p: _set_cell(p, 0, "age", "1.5") or _add_column(p, "visit", "1.5"),
     r"'visit' must be a whole number"),
    ("negative_age", lambda p: _set_cell(p, 3, "age", "-3"), r"'age' must be between 0 and 130 at line 5"),
    ("infinite_age", lambda p: _set_cell(p, 3, "age", "inf"), r"'age' must be between"),
    ("text_age", lambda p: _set_cell(p, 3, "age", "seventy"), r"'age' must be numeric at line 5"),
    ("duplicate_id", lambda p: _set_cell(p, 3, "image_id", "img0"), r"duplicate image_id at line 2 \(img0\), line 5"),
]


def _add_column(path: Path, name: str, value: str) -> None:
    lines = _lines(path)
    _write(path, [lines[0] + f",{name}"] + [ln + f",{value}" for ln in lines[1:]])


@pytest.mark.parametrize(("case", "breaks", "pattern"), ERRORS, ids=[c[0] for c in ERRORS])
def test_a_malformed_table_is_refused_by_name(tmp_path, case, breaks, pattern):
    path = write_table(tmp_path)
    breaks(path)
    with pytest.raises(AnnotationError, match=pattern) as err:
        load_annotations(path)
    assert str(path) in str(err.value)


def test_a_truncated_row_never_reads_as_a_healthy_scan(tmp_path):
    # The last row is diseased (drusen); cut it after the drusen cell: nothing after may default.
    path = write_table(tmp_path)
    lines = _lines(path)
    header = lines[0].split(",")
    lines[-1] = ",".join(lines[-1].split(",")[: header.index("drusen") + 1])
    _write(path, lines)
    with pytest.raises(AnnotationError, match=r"line 7 \(\d+ of \d+\)"):
        load_annotations(path)


def test_all_empty_rows_are_skipped_with_a_warning(tmp_path, caplog):
    path = write_table(tmp_path)
    _write(path, _lines(path) + ["," * 25, ""])
    with caplog.at_level(logging.WARNING):
        table = load_annotations(path)
    assert len(table) == 6
    assert "skipped 1 row(s) with every cell empty (line 8)" in caplog.text


@pytest.mark.parametrize(("column", "guess"), [("stgae", "stage"), ("Split", "split"), ("drusen_szie", "drusen_size"),
                                               ("visual_acuity", "visual_acuity_logmar"), ("referal", "referral")])
def test_a_misspelt_optional_column_is_warned_with_the_closest_name(tmp_path, caplog, column, guess):
    path = write_table(tmp_path)
    _add_column(path, column, "")
    with caplog.at_level(logging.WARNING):
        load_annotations(path)
    assert f"column {column!r} is not a known column and is ignored; did you mean {guess!r}?" in caplog.text


def test_an_unrelated_extra_column_is_not_warned(tmp_path, caplog):
    path = write_table(tmp_path)
    _add_column(path, "scanner_serial", "A17")
    with caplog.at_level(logging.WARNING):
        load_annotations(path)
    assert "not a known column" not in caplog.text


def test_a_given_stage_that_contradicts_the_findings_is_warned_with_the_count(tmp_path, caplog):
    path = write_table(tmp_path)
    _add_column(path, "stage", "healthy")  # rows 1, 3, 5 have large drusen: intermediate
    with caplog.at_level(logging.WARNING):
        table = load_annotations(path)
    assert "3 row(s) give a stage that their findings contradict" in caplog.text
    assert "line 3 (img1): given healthy, findings imply intermediate" in caplog.text
    assert set(table["stage"]) == {"healthy"}, "the given label is kept"


def test_an_attribute_of_an_absent_finding_is_warned(tmp_path, caplog):
    path = write_table(tmp_path)
    _add_column(path, "srf_volume", "large")
    with caplog.at_level(logging.WARNING):
        table = load_annotations(path)
    assert "6 attribute value(s) given for a finding marked absent" in caplog.text
    assert not table["srf"].any()


def test_labels_and_attributes_are_read_case_insensitively_in_their_canonical_spelling(tmp_path):
    path = write_table(tmp_path)
    _set_cell(path, 0, "eye", " Right ")
    _set_cell(path, 0, "split", "TRAIN")
    _set_cell(path, 0, "drusen", "Yes")
    _set_cell(path, 0, "drusen_size", "Large")
    _add_column(path, "hypertransmission_type", "")
    _set_cell(path, 2, "hypertransmission", "1")
    _set_cell(path, 2, "hypertransmission_type", "crora")
    table = load_annotations(path)
    assert table.loc[0, "eye"] == "right" and table.loc[0, "split"] == "train"
    assert table.loc[0, "drusen_size"] == "large" and table.loc[0, "stage"] == "intermediate"
    assert table.loc[2, "hypertransmission_type"] == "cRORA" and table.loc[2, "stage"] == "late_dry"


def test_a_multi_line_report_keeps_the_line_numbers_right(tmp_path):
    path = write_table(tmp_path)
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table["report"] = "Normal retina.\nNo fluid."
    table.loc[4, "srf"] = ""
    table.to_csv(path, index=False)  # data row 4 starts on line 2 + 4 rows x 2 lines = 10
    with pytest.raises(AnnotationError, match=r"line 10 \(img4\): srf"):
        load_annotations(path)


def test_a_truncated_table_stops_the_real_cli_with_one_line(tmp_path):
    path = write_table(tmp_path)
    path.write_text(path.read_text()[:-20])
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "run/generate_curriculum_part1.py", "model/language_model=rules",
                             f"generation.annotations_file={path}", f"paths.output_dir={tmp_path / 'out'}"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "fewer fields than the header" in result.stderr and "line 7" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("encode", [
    lambda text: text.replace("\n", "\r\n").encode(),        # Windows line ends
    lambda text: b"\xef\xbb\xbf" + text.encode(),           # UTF-8 with a byte-order mark
    lambda text: text.encode("utf-16"),                      # spreadsheet "Unicode text"
    lambda text: text.replace(",", " , ").encode(),          # spaces around every cell
    lambda text: b"\xef\xbb\xbf\xef\xbb\xbf" + text.encode(),  # a byte-order mark saved twice
    lambda text: text.replace("\n", "\r").encode(),         # classic Mac line ends
    lambda text: text.replace(",", "\u00a0,\u00a0").encode(),  # non-breaking spaces around cells
    lambda text: "\n".join(line + ",," for line in text.splitlines()).encode(),  # trailing empty columns
    lambda text: text.encode("utf-16-be").join([b"\xfe\xff", b""]),  # UTF-16, big-endian
], ids=["crlf", "utf8_bom", "utf16", "padded_cells", "double_bom", "cr_only", "nbsp_padding",
        "trailing_delimiters", "utf16_be"])
def test_harmless_variants_of_the_format_load_unchanged(tmp_path, encode):
    path = write_table(tmp_path)
    expected = load_annotations(path)
    path.write_bytes(encode(path.read_text()))
    table = load_annotations(path)
    assert table.drop(columns="image_file").equals(expected.drop(columns="image_file"))


# More variants of each class (issue 14, item 3): cells that hold only blanks, quotes or an invisible
# character are empty; a table cut off anywhere in its last row is refused by name.
BLANK_CELLS = ["   ", "\t", '""', '"  "', "\u00a0", "\u200b", "\ufeff", "n/a", "NULL", "?", "missing"]
BLANK_CASES = (
    [(f"biomarker {cell!r}", "irf", cell, r"missing biomarker cell.*line 4 \(img2\): irf")
     for cell in BLANK_CELLS]
    + [(f"{column} {cell!r}", column, cell, rf"empty {column} at line 4 \(img2\)")
       for column in ("split", "eye", "patient_id") for cell in BLANK_CELLS[:6]])


@pytest.mark.parametrize(("case", "column", "cell", "pattern"), BLANK_CASES, ids=[c[0] for c in BLANK_CASES])
def test_a_cell_with_only_blanks_is_an_empty_cell(tmp_path, case, column, cell, pattern):
    path = write_table(tmp_path)
    _set_cell(path, 2, column, cell)
    with pytest.raises(AnnotationError, match=pattern):
        load_annotations(path)


@pytest.mark.parametrize("cut", [1, 2, 3, 5, 8, 13, 21, 34])
def test_a_table_cut_anywhere_in_its_last_row_is_refused(tmp_path, cut):
    # The last row (img5) has drusen; cutting it must never load it with some other finding set.
    path = write_table(tmp_path)
    text = path.read_text().rstrip("\n")
    path.write_text(text[:-cut])
    with pytest.raises(AnnotationError, match=r"line 7"):
        load_annotations(path)


def _table_with(tmp_path: Path, finding: dict[str, str], drop: str | None = None) -> pd.DataFrame:
    folder = tmp_path / ("without" if drop else "with")
    path = write_table(folder)
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column, value in finding.items():
        if column not in table:
            table[column] = ""
        table.loc[0, column] = value
    table.drop(columns=[drop] if drop else []).to_csv(path, index=False)
    return load_annotations(path)


ATTRIBUTE_COLUMNS = [(b.id, b.attribute_column(a)) for b in load_knowledge().biomarkers.values()
                     for a in b.attributes]


@pytest.mark.parametrize(("biomarker", "column"), ATTRIBUTE_COLUMNS, ids=[c for _, c in ATTRIBUTE_COLUMNS])
def test_an_empty_attribute_of_a_present_finding_is_unknown_not_a_value(tmp_path, biomarker, column):
    # A present finding whose attribute cell is empty derives what it derives with no such column.
    with_empty = _table_with(tmp_path, {biomarker: "1", column: ""})
    without = _table_with(tmp_path, {biomarker: "1", column: ""}, drop=column)
    for label in ("stage", "referral", "referral_treatment"):
        assert with_empty.loc[0, label] == without.loc[0, label], label


def test_drusen_of_unrecorded_size_are_early_amd_not_a_healthy_scan(tmp_path):
    table = _table_with(tmp_path, {"drusen": "1", "drusen_size": "", "rpe_elevation": "1"})
    assert table.loc[0, "stage"] == "early" and table.loc[0, "referral"] == "routine"


BIOMARKERS_BY_LENGTH = sorted(load_knowledge().biomarkers, key=len, reverse=True)
LABEL_SPELLINGS = [("stage", "Late Dry", "late_dry"), ("stage", "late-wet-active", "late_wet_active"),
                   ("stage", "LATE WET inactive", "late_wet_inactive"),
                   ("stage", " Intermediate ", "intermediate"),
                   ("referral", "within two weeks", "within_two_weeks"), ("referral", "Not-Seen", "not_seen"),
                   ("referral_treatment", "Urgent Treatment", "urgent_treatment"), ("eye", "OD", "right"),
                   ("eye", "os", "left"), ("eye", "R", "right"), ("sex", "F", "female"),
                   ("sex", "Male", "male"),
                   ("split", "Validation", "validation"), ("drusen_size", "LARGE", "large"),
                   ("drusen_confluent", "1", "true"), ("drusen_confluent", "No", "false"),
                   ("hypertransmission_type", "crora", "cRORA"),
                   ("other_pathology_kind", "Epiretinal-Membrane", "epiretinal membrane")]


@pytest.mark.parametrize(("column", "cell", "canonical"), LABEL_SPELLINGS,
                         ids=[f"{c}={v}" for c, v, _ in LABEL_SPELLINGS])
def test_a_label_in_other_case_or_separators_reads_canonically(tmp_path, column, cell, canonical):
    path = write_table(tmp_path)
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    if column not in table:
        table[column] = ""
    # Rows 1 and 4 are patient p1's scans (one split per patient); an attribute needs its finding.
    table.loc[[1, 4], column] = cell
    finding = next((b for b in BIOMARKERS_BY_LENGTH if column.startswith(f"{b}_")), None)
    if finding:
        table.loc[[1, 4], finding] = "1"
    table.to_csv(path, index=False)
    loaded = load_annotations(path)
    assert loaded.loc[1, column] == loaded.loc[4, column] == canonical


def test_labels_given_in_another_case_do_not_read_as_contradicting_the_findings(tmp_path, caplog):
    path = write_table(tmp_path)
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table["stage"] = ["Healthy" if d == "0" else "INTERMEDIATE" for d in table["drusen"]]
    table["referral"] = ["Not Seen" if d == "0" else "Routine" for d in table["drusen"]]
    table.to_csv(path, index=False)
    with caplog.at_level(logging.WARNING):
        loaded = load_annotations(path)
    assert "contradict" not in caplog.text
    assert list(loaded["stage"]) == ["healthy", "intermediate"] * 3


@pytest.mark.parametrize("where", [1, 3, 6])
def test_a_header_repeated_inside_the_table_is_named(tmp_path, where):
    path = write_table(tmp_path)
    lines = _lines(path)
    _write(path, lines[:where] + [lines[0]] + lines[where:])
    with pytest.raises(AnnotationError, match=rf"line {where + 1} repeat\(s\) the header line"):
        load_annotations(path)


def test_a_windows_image_path_with_backslashes_finds_its_scan(tmp_path):
    path = write_table(tmp_path)
    _set_cell(path, 1, "image_path", "images\\img1.png")
    table = load_annotations(path)
    assert Path(table.loc[1, "image_file"]) == tmp_path / "images" / "img1.png"
    _set_cell(path, 2, "image_path", "images\\missing.png")
    with pytest.raises(AnnotationError, match=r"line 4 \(img2\): image file not found"):
        load_annotations(path)
