"""Demo inference: a registry model answers configurable questions about a folder or glob of scans.

`run_demo_inference(cfg)` is what `run/demos/inference.py` calls; it writes `answers.jsonl` in the
run folder and returns the answers (the script prints them). Files it cannot read are skipped and
listed (`unreadable.jsonl`); `demo.strict=true` turns them into a non-zero exit.
"""

from __future__ import annotations

import glob
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig
from PIL import Image

from dataset.errors import ConfigError, InputError
from dataset.images import ImageReadError, load_scan
from dataset.runtime import prepare_run
from dataset.transforms import build_scan_transform
from evaluation.outputs import write_jsonl
from evaluation.vision_models import build_answerer

logger = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
ANSWERS_FILE = "answers.jsonl"
UNREADABLE_FILE = "unreadable.jsonl"


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
    others = sorted(p.name for p in found if p.is_file() and p.suffix.lower() not in IMAGE_SUFFIXES)
    if others:
        shown = ", ".join(others[:10]) + (" ..." if len(others) > 10 else "")
        logger.warning("ignoring %d file(s) at %s that are not images by their suffix (%s): %s", len(others),
                       text, ", ".join(sorted(IMAGE_SUFFIXES)), shown)
    if not images:
        kinds = ", ".join(sorted(IMAGE_SUFFIXES))
        raise FileNotFoundError(f"no images ({kinds}) at {text}; put OCT B-scans there "
                                "or pass dataset.task.images=<folder or glob>")
    return images


class DemoAnswers(list):
    """The demo's answers (a list of records) and the files it could not read.

    Attributes:
        unreadable: one {"file", "reason"} per image file that was skipped.
    """

    def __init__(self, records: list[dict[str, Any]], unreadable: list[dict[str, str]]):
        super().__init__(records)
        self.unreadable = unreadable


def read_demo_images(paths: list[Path], transform) -> tuple[list[Path], list[Image.Image], list[dict[str, str]]]:
    """Read and crop every image it can; one unreadable file does not stop the others.

    Returns:
        (readable paths, their model views, one {"file", "reason"} per unreadable file).
    """
    kept, images, unreadable = [], [], []
    for path in paths:
        try:
            images.append(transform(load_scan(path)))
            kept.append(path)
        except (ImageReadError, OSError, ValueError) as err:  # decode errors of any kind
            reason = getattr(err, "reason", None) or str(err).replace(str(path), "").strip(" :")
            reason = reason or type(err).__name__
            unreadable.append({"file": str(path), "reason": reason})
            logger.warning("skipping %s: %s", path, reason)
    return kept, images, unreadable


def run_demo_inference(cfg: DictConfig) -> DemoAnswers:
    """Answer every configured question about every readable image with one registry model.

    Unreadable images (corrupt, empty, smaller than the crop) are skipped, listed in the returned
    `unreadable` and in `unreadable.jsonl` in the run folder; `demo.strict=true` makes any of
    them an error (after the readable ones are answered).

    Args:
        cfg: the composed `inference` config (`dataset.task.images`, `dataset.task.questions`,
            `demo.*`, `pretrained_models`).

    Returns:
        One {"image", "question", "answer", "model"} per readable image and question, image-major.

    Raises:
        ConfigError: a question is not text, or there are none.
        InputError: no image could be read (each file and its reason listed).
    """
    run_dir = prepare_run(cfg)
    task = cfg.dataset.task
    paths = find_images(task.images)
    raw_questions = task.questions
    if isinstance(raw_questions, str):  # `dataset.task.questions="What stage?"`: one question, not its letters
        raw_questions = [raw_questions]
    elif raw_questions is None:
        raw_questions = []
    elif not isinstance(raw_questions, (list, tuple, ListConfig)):
        raise ConfigError(f"dataset.task.questions must be a list of questions, got {raw_questions!r}; "
                          "e.g. dataset.task.questions='[What stage?,Any fluid?]'")
    not_text = [q for q in raw_questions if not isinstance(q, str)]
    if not_text:
        # YAML reads an unquoted "Describe it: findings, stage" as a mapping, not a question.
        raise ConfigError(f"dataset.task.questions must be plain strings; quote these in YAML: {not_text}")
    questions = list(raw_questions)
    if not questions:
        raise ConfigError("dataset.task.questions is empty; give at least one question")
    if any(not q.strip() for q in questions):
        raise ConfigError(f"dataset.task.questions holds an empty question ({questions}); remove it or write it out")
    transform = build_scan_transform(int(cfg.dataset.crop_size), None,
                                     image_size=(int(cfg.dataset.image_height), int(cfg.dataset.image_width))
                                     if cfg.demo.resize_to_dataset else None)
    paths, images, unreadable = read_demo_images(paths, transform)
    if unreadable:
        write_jsonl(run_dir / UNREADABLE_FILE, unreadable)
    if not images:
        listed = "; ".join(f"{u['file']}: {u['reason']}" for u in unreadable)
        raise InputError(f"none of the {len(unreadable)} image files at {task.images} could be read ({listed})")
    answerer = build_answerer(cfg.pretrained_models, cfg.paths, cfg.demo, "demo")
    try:
        pairs = [(i, q) for i in range(len(images)) for q in questions]
        answers = answerer.generate([images[i] for i, _ in pairs], [q for _, q in pairs])
    finally:
        answerer.close()
    records = [{"model": answerer.name, "image": str(paths[i]), "question": q, "answer": a}
               for (i, q), a in zip(pairs, answers)]
    write_jsonl(run_dir / ANSWERS_FILE, records)
    logger.info("%d answers about %d images written to %s", len(records), len(paths), run_dir / ANSWERS_FILE)
    return DemoAnswers(records, unreadable)


def check_strict(result: DemoAnswers, strict: bool) -> None:
    """Under `demo.strict=true`, fail when any image file was unreadable.

    Raises:
        InputError: strict and at least one file was skipped; the message counts and lists them.
    """
    if strict and result.unreadable:
        listed = "; ".join(f"{u['file']}: {u['reason']}" for u in result.unreadable)
        raise InputError(f"demo.strict=true and {len(result.unreadable)} image file(s) could not be read "
                         f"(the others were answered): {listed}")
