"""Explaining one report: its phrases, their teacher-forced Grad-CAM maps, and their scores."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from saliency.gradcam import PhraseGradCam
from saliency.localisation import score_map, upsample_map
from saliency.overlays import OverlayStyle, save_composite, save_phrase_overlay
from saliency.phrases import Phrase, PhraseVocabulary
from saliency.teacher_forcing import build_teacher_forced_input

logger = logging.getLogger(__name__)


@dataclass
class ImageExplanation:
    """The maps of one image's report.

    Attributes:
        image_id: the annotation row's id.
        report: the explained report.
        phrases: the phrases attributed (in `maps` order).
        maps: [P, g, g] Grad-CAM maps on the layer's patch grid.
        seconds: wall time of the attribution (not of report generation).
        skipped: phrases found but not attributed, with the reason.
    """

    image_id: str
    report: str
    phrases: list[Phrase]
    maps: np.ndarray
    seconds: float = 0.0
    skipped: list[dict] = field(default_factory=list)


def explain_report(explainer: PhraseGradCam, processor, prompt_formatter, image: Image.Image, image_id: str,
                   question: str, report: str, vocabulary: PhraseVocabulary,
                   include_negated: bool = False) -> ImageExplanation:
    """Grad-CAM maps for every finding phrase of `report` on `image`.

    Args:
        explainer: the Grad-CAM runner (owns the model).
        processor: the model's processor.
        prompt_formatter: `models.format_prompt`-like callable (processor, question, answer) -> text.
        image: the model's view of the scan (already cropped).
        image_id: for logs and file names.
        question: the question the report answers.
        report: the report text, fed back as the answer.
        vocabulary: which phrases name findings.
        include_negated: also attribute phrases the report states as absent.

    Returns:
        The explanation (no phrases -> an empty [0, 0, 0] map array).
    """
    found = vocabulary.find(report, include_negated=True)
    phrases = [p for p in found if include_negated or not p.negated]
    skipped = [{"phrase": p.text, "biomarker": p.biomarker, "reason": "negated in the report"}
               for p in found if p.negated and not include_negated]
    if not phrases:
        return ImageExplanation(image_id, report, [], np.zeros((0, 0, 0), np.float32), 0.0, skipped)
    start = time.perf_counter()
    example = build_teacher_forced_input(processor, image, prompt_formatter(processor, question, answer=report), report)
    maps = explainer.maps(example, example.target_mask(phrases))
    seconds = time.perf_counter() - start
    logger.debug("%s: %d phrase maps in %.2f s", image_id, len(phrases), seconds)
    return ImageExplanation(image_id, report, phrases, maps, seconds, skipped)


def score_explanation(explanation: ImageExplanation, masks: Mapping[str, np.ndarray] | None,
                      view_size: tuple[int, int], tolerance_px: int = 0) -> list[dict]:
    """Localisation scores of each phrase map against its biomarker's mask in the model's view.

    Args:
        explanation: the image's maps.
        masks: biomarker id -> [H, W] boolean mask already cropped to the view; None when the data
            has no masks.
        view_size: (height, width) of the model's view.
        tolerance_px: pointing-game tolerance.

    Returns:
        One row per phrase; `scored` says whether a non-empty mask existed (else `reason`).
    """
    rows = []
    for phrase, grid_map in zip(explanation.phrases, explanation.maps):
        row = {"image_id": explanation.image_id, "phrase_index": phrase.index, "phrase": phrase.text,
               "biomarker": phrase.biomarker, "negated": phrase.negated, "scored": False, "reason": ""}
        mask = None if masks is None else masks.get(phrase.biomarker)
        if masks is None:
            row["reason"] = "no lesion masks for this image"
        elif mask is None or not mask.any():
            row["reason"] = "no lesion of this biomarker in the model's view"
        else:
            row.update(score_map(upsample_map(grid_map, view_size), mask, tolerance_px))
            row["scored"] = True
            row["mask_fraction"] = float(mask.mean())
        rows.append(row)
    return rows


def save_explanation(folder: Path, explanation: ImageExplanation, view: np.ndarray, style: OverlayStyle,
                     masks: Mapping[str, np.ndarray] | None = None, save_overlays: bool = True) -> list[Path]:
    """Write an image's report, raw maps, phrase list, per-phrase overlays and composite.

    Layout: `report.txt`, `phrases.json`, `maps.npz` (one [g, g] array per phrase slug plus
    `maps`, the [P, g, g] stack), `overlay_<slug>.png`, `composite.png`.

    Returns:
        The written files.
    """
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "report.txt", folder / "phrases.json", folder / "maps.npz"]
    written[0].write_text(explanation.report + "\n")
    written[1].write_text(json.dumps({"image_id": explanation.image_id,
                                      "phrases": [p.to_dict() | {"slug": p.slug} for p in explanation.phrases],
                                      "skipped": explanation.skipped}, indent=2))
    np.savez(written[2], maps=explanation.maps, **{p.slug: m for p, m in zip(explanation.phrases, explanation.maps)})
    if not save_overlays:
        return written
    size = view.shape[:2]
    upsampled = [upsample_map(m, size) for m in explanation.maps]
    phrase_masks = [None if masks is None else masks.get(p.biomarker) for p in explanation.phrases]
    for phrase, saliency, mask in zip(explanation.phrases, upsampled, phrase_masks):
        written.append(save_phrase_overlay(folder / f"overlay_{phrase.slug}.png", view, saliency, phrase, style, mask))
    written.append(save_composite(folder / "composite.png", view, explanation.report, explanation.phrases,
                                  upsampled, style, phrase_masks, title=explanation.image_id))
    return written
