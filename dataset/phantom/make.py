"""Library entry points behind `python run/make_dataset.py`: the phantom dataset and the few
samples shipped in the repository (`dataset/processed_images/`, `dataset/sample_annotations/`)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dataset.clinical import STAGES
from dataset.phantom.geometry import ScanGeometry
from dataset.phantom.records import plan_slots, table_columns
from dataset.phantom.settings import check_phantom_settings
from dataset.phantom.writer import default_workers, make_scans, write_dataset, write_table
from dataset.runtime import prepare_run

logger = logging.getLogger(__name__)
# Shipped demo scans: every stage, with the commonest ones twice.
PROCESSED_STAGES = ("healthy", "early", "intermediate", "intermediate", "late_dry", "late_wet_inactive",
                    "late_wet_active", "late_wet_active")


def _phantom_block(cfg: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(cfg.dataset.phantom, resolve=True)


def make_dataset(cfg: DictConfig) -> dict[str, Any]:
    """Generate the phantom dataset described by `cfg.dataset.phantom` (or only the shipped
    samples when `cfg.samples_only` is true).

    Args:
        cfg: composed config (`configs/make_dataset.yaml`): `dataset.image_height/image_width`,
            `dataset.phantom.*` (num_images, seed, output_dir, stage_prevalence, ...).

    Returns:
        The dataset summary (counts per stage, referral, split and biomarker) plus `output_dir`
        and `seconds` (wall time, not written to `summary.json`, which stays byte-identical).

    Raises:
        ConfigError: a bad `dataset.*` size or `dataset.phantom.*` setting, before any file is written.
    """
    check_phantom_settings(cfg.dataset, bool(cfg.samples_only))
    run_dir = prepare_run(cfg)
    if cfg.samples_only:
        return write_samples(cfg)
    phantom = _phantom_block(cfg)
    geom = ScanGeometry.from_size(int(cfg.dataset.image_height), int(cfg.dataset.image_width),
                                  phantom.get("visible_width"))
    num_images = int(phantom["num_images"])
    start = time.perf_counter()
    seed = int(phantom["seed"])
    slots = plan_slots(num_images, phantom, seed)
    out_dir = Path(phantom["output_dir"])
    summary = write_dataset(slots, out_dir, geom, phantom, seed, default_workers(phantom.get("num_workers")))
    seconds = time.perf_counter() - start
    logger.info("made %d phantom scans in %.1f s; run folder %s", num_images, seconds, run_dir)
    return {**summary, "output_dir": str(out_dir), "seconds": seconds}


def write_samples(cfg: DictConfig) -> dict[str, Any]:
    """Write the small phantom samples the repository ships: demo scans spanning the stages in
    `paths.processed_images_dir` and a six-row annotation table with images and reports (one
    per stage) in `paths.sample_annotations_dir`.

    Returns:
        The written files: `processed_images` (list) and `sample_annotations` (the table).
    """
    phantom = _phantom_block(cfg)
    phantom["report_without_stage_fraction"] = 0.0  # demo reports always state their stage
    geom = ScanGeometry.from_size(int(cfg.dataset.image_height), int(cfg.dataset.image_width),
                                  phantom.get("visible_width"))
    seed = int(phantom["seed"])

    processed_dir = Path(cfg.paths.processed_images_dir)
    slots = plan_slots(len(PROCESSED_STAGES), phantom, seed, PROCESSED_STAGES)
    processed = make_scans(slots, processed_dir, geom, phantom, seed, num_workers=1,
                           image_name="{image_id}_{stage}.png", mask_name=None)

    annotations_dir = Path(cfg.paths.sample_annotations_dir)
    samples = make_scans(plan_slots(len(STAGES), phantom, seed + 1, STAGES), annotations_dir, geom, phantom,
                         seed + 1, num_workers=1, prefix="sample", mask_name=None)
    columns = [c for c in table_columns() if c != "mask_path"]
    write_table(samples, annotations_dir / "annotations.csv", columns)
    logger.info("wrote %d demo scans to %s and %d annotated samples to %s", len(processed), processed_dir,
                len(samples), annotations_dir)
    return {"processed_images": [str(processed_dir / r["image_path"]) for r in processed],
            "sample_annotations": str(annotations_dir / "annotations.csv")}
