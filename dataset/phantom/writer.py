"""Write the phantom dataset: PNG scans, lesion masks, `annotations.csv` and `summary.json`.

Files are byte-identical for a seed: each scan's content depends only on (seed, index), PNGs
carry no metadata, mask archives have fixed timestamps, and the table is written as text.
"""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
import os
import time
import zipfile
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from dataset.clinical import BIOMARKERS, REFERRALS, STAGES
from dataset.phantom.cohort import ScanSlot
from dataset.phantom.geometry import ScanGeometry
from dataset.phantom.records import build_record, scan_rngs, table_columns
from dataset.phantom.render import render_scan

logger = logging.getLogger(__name__)
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
CHUNK = 40


def save_masks(path: Path, masks: Mapping[str, np.ndarray]) -> None:
    """Save boolean masks as a compressed `.npz` (one array per key) with fixed zip timestamps,
    so the same masks always give the same bytes (`np.savez_compressed` stamps the time)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, mask in masks.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(mask, dtype=bool), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            # Level 1: masks are mostly empty, so it compresses nearly as well at half the cost.
            archive.writestr(info, buffer.getvalue(), compresslevel=1)


def load_masks(path: str | Path) -> dict[str, np.ndarray]:
    """Read a mask archive written by `save_masks`: biomarker id -> (H, W) bool."""
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def _make_chunk(job: tuple[Path, tuple[int, int, int | None], int, dict[str, Any], dict[str, Any],
                           list[tuple[int, ScanSlot]]]) -> list[dict[str, Any]]:
    """Worker: build, render and save a run of scans; return their table rows."""
    out_dir, (height, width, visible_width), seed, phantom, naming, slots = job
    geom = ScanGeometry.from_size(height, width, visible_width)
    rows = []
    for index, slot in slots:
        record = build_record(index, slot, phantom, seed, **naming)
        render_rng = scan_rngs(seed, index)[1]
        rendered = render_scan(record["_findings"], record["eye"], record["_quality"], geom, render_rng)
        # Run-length strategy: as small as the default for speckled scans at ~60% of the time.
        Image.fromarray(rendered.image).save(out_dir / record["image_path"], format="PNG",
                                             compress_type=zlib.Z_RLE)
        if record.get("mask_path"):
            save_masks(out_dir / record["mask_path"], rendered.masks)
        rows.append({k: v for k, v in record.items() if not k.startswith("_")})
    return rows


def make_scans(slots: Sequence[ScanSlot], out_dir: Path, geom: ScanGeometry, phantom: Mapping[str, Any],
               seed: int, num_workers: int, prefix: str = "phantom",
               image_name: str = "images/{image_id}.png",
               mask_name: str | None = "masks/{image_id}.npz") -> list[dict[str, Any]]:
    """Build, render and save every scan of `slots`; return the table rows in order.

    Args:
        slots: the cohort layout (`plan_slots`).
        out_dir: dataset folder; image and mask paths are relative to it.
        geom: scan size.
        phantom: the `dataset.phantom` config block.
        seed: generation seed (a scan depends only on seed and index, not on the workers).
        num_workers: worker processes; 1 works in this process.
        prefix, image_name, mask_name: see `records.build_record`.
    """
    for name in (image_name, mask_name):
        if name:
            (out_dir / name.format(image_id="x", stage="x")).parent.mkdir(parents=True, exist_ok=True)
    naming = {"prefix": prefix, "image_name": image_name, "mask_name": mask_name}
    indexed = list(enumerate(slots))
    jobs = [(out_dir, (geom.height, geom.width, geom.visible_width), seed, dict(phantom), naming, indexed[i: i + CHUNK])
            for i in range(0, len(indexed), CHUNK)]
    rows: list[dict[str, Any]] = []
    progress = tqdm(total=len(indexed), desc="making phantom scans", unit="scan", disable=len(indexed) < 200)
    if num_workers <= 1 or len(jobs) == 1:
        results = map(_make_chunk, jobs)
        for chunk in results:
            rows += chunk
            progress.update(len(chunk))
    else:
        # spawn, not fork: the caller may hold threads (torch, tokenizers) that fork would copy.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=num_workers, mp_context=context) as pool:
            for chunk in pool.map(_make_chunk, jobs):
                rows += chunk
                progress.update(len(chunk))
    progress.close()
    return rows


def write_table(rows: Sequence[Mapping[str, Any]], path: Path,
                columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Write the annotation table (contract columns only, as text) and return it."""
    columns = list(columns or table_columns())
    table = pd.DataFrame([{c: row[c] for c in columns} for row in rows], columns=columns)
    table.to_csv(path, index=False, lineterminator="\n")
    return table


def summarise(table: pd.DataFrame, geom: ScanGeometry, seed: int) -> dict[str, Any]:
    """Counts per stage, referral, split and biomarker, for `summary.json` and the log."""
    def counts(column: str, order: Sequence[str]) -> dict[str, int]:
        found = Counter(table[column])
        return {key: int(found.get(key, 0)) for key in order}

    return {
        "num_images": len(table), "num_patients": int(table["patient_id"].nunique()),
        "num_eyes": int(table[["patient_id", "eye"]].drop_duplicates().shape[0]),
        "image_size": [geom.height, geom.width], "seed": int(seed),
        "stages": counts("stage", STAGES), "referral": counts("referral", REFERRALS),
        "splits": counts("split", ("train", "validation", "test")),
        "split_patients": {s: int(table.loc[table["split"] == s, "patient_id"].nunique())
                           for s in ("train", "validation", "test")},
        "biomarkers": {b: int(table[b].sum()) for b in BIOMARKERS},
    }


def format_summary(summary: Mapping[str, Any]) -> str:
    """A plain-text table of the summary for the log."""
    total = max(summary["num_images"], 1)
    lines = [f"{summary['num_images']} scans of {summary['image_size'][0]}x{summary['image_size'][1]}, "
             f"{summary['num_patients']} patients, {summary['num_eyes']} eyes",
             f"{'stage':<20}{'scans':>7}{'share':>8}"]
    lines += [f"{k:<20}{v:>7}{v / total:>8.1%}" for k, v in summary["stages"].items()]
    lines.append(f"{'split':<20}{'scans':>7}{'patients':>9}")
    lines += [f"{k:<20}{v:>7}{summary['split_patients'][k]:>9}" for k, v in summary["splits"].items()]
    lines.append(f"{'biomarker':<20}{'present':>7}{'share':>8}")
    lines += [f"{k:<20}{v:>7}{v / total:>8.1%}" for k, v in summary["biomarkers"].items()]
    return "\n".join(lines)


def remove_stale(out_dir: Path, keep: set[str], prefix: str) -> None:
    """Delete scans and masks of an earlier, larger run that this run did not rewrite."""
    for folder, suffix in (("images", ".png"), ("masks", ".npz")):
        for path in (out_dir / folder).glob(f"{prefix}_*{suffix}"):
            if f"{folder}/{path.name}" not in keep:
                path.unlink()


def default_workers(requested: int | None) -> int:
    """Worker processes: the requested number, or the CPUs this process may use (at most 8)."""
    if requested:
        return int(requested)
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(available, 8))


def write_dataset(slots: Sequence[ScanSlot], out_dir: Path, geom: ScanGeometry, phantom: Mapping[str, Any],
                  seed: int, num_workers: int) -> dict[str, Any]:
    """Write scans, masks, `annotations.csv` and `summary.json`; return the summary."""
    start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = make_scans(slots, out_dir, geom, phantom, seed, num_workers)
    remove_stale(out_dir, {r["image_path"] for r in rows} | {r["mask_path"] for r in rows}, "phantom")
    table = write_table(rows, out_dir / "annotations.csv")
    summary = summarise(table, geom, seed)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    logger.info("phantom dataset in %s (%.1f s, %d workers)\n%s", out_dir, time.perf_counter() - start,
                num_workers, format_summary(summary))
    return summary
