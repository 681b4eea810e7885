"""Demo inference: a registry model answers configurable questions about a folder or glob of scans.

`run_demo_inference(cfg)` is what `run/demos/inference.py` calls; it writes `answers.jsonl` in the
run folder and returns the answers (the script prints them).
"""

from __future__ import annotations

import glob
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from dataset.images import load_scan
from dataset.runtime import prepare_run
from dataset.transforms import build_scan_transform
from evaluation.outputs import write_jsonl
from evaluation.vision_models import build_answerer, load_registry_entry

logger = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
ANSWERS_FILE = "answers.jsonl"


def find_images(source: str | Path) -> list[Path]:
    """Image files in a folder (not recursive), matching a glob, or a single file, sorted.

    Raises:
        FileNotFoundError: nothing found; the message says where images are expected.
    """
    text = str(source)
    if any(c in text for c in "*?["):
        found = [Path(p) for p in glob.glob(text, recursive=True)]
    elif Path(text).is_dir():
        found = list(Path(text).iterdir())
    else:
        found = [Path(text)] if Path(text).is_file() else []
    images = sorted(p for p in found if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        kinds = ", ".join(sorted(IMAGE_SUFFIXES))
        raise FileNotFoundError(f"no images ({kinds}) at {text}; put OCT B-scans there "
                                "or pass dataset.task.images=<folder or glob>")
    return images


def run_demo_inference(cfg: DictConfig) -> list[dict[str, Any]]:
    """Answer every configured question about every image with one registry model.

    Args:
        cfg: the composed `inference` config (`dataset.task.images`, `dataset.task.questions`,
            `demo.*`, `pretrained_models`).

    Returns:
        One {"image", "question", "answer", "model"} per image and question, image-major.
    """
    run_dir = prepare_run(cfg)
    task = cfg.dataset.task
    paths = find_images(task.images)
    not_text = [q for q in task.questions if not isinstance(q, str)]
    if not_text:
        # YAML reads an unquoted "Describe it: findings, stage" as a mapping, not a question.
        raise ValueError(f"dataset.task.questions must be plain strings; quote these in YAML: {not_text}")
    questions = list(task.questions)
    if not questions:
        raise ValueError("dataset.task.questions is empty; give at least one question")
    transform = build_scan_transform(int(cfg.dataset.crop_size), None,
                                     image_size=(int(cfg.dataset.image_height), int(cfg.dataset.image_width))
                                     if cfg.demo.get("resize_to_dataset", True) else None)
    images = [transform(load_scan(p)) for p in paths]
    entry = load_registry_entry(str(cfg.pretrained_models.name), cfg)
    answerer = build_answerer(entry, cfg.paths, cfg.demo)
    try:
        pairs = [(i, q) for i in range(len(images)) for q in questions]
        answers = answerer.generate([images[i] for i, _ in pairs], [q for _, q in pairs])
    finally:
        answerer.close()
    records = [{"model": answerer.name, "image": str(paths[i]), "question": q, "answer": a}
               for (i, q), a in zip(pairs, answers)]
    write_jsonl(run_dir / ANSWERS_FILE, records)
    logger.info("%d answers about %d images written to %s", len(records), len(paths), run_dir / ANSWERS_FILE)
    return records
