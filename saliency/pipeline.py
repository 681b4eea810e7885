"""The saliency run behind `run/visual_language_gradcam.py`: reports, phrase maps, overlays, scores.

For each selected image: generate a report (or take the annotated one), find the finding phrases,
compute each phrase's Grad-CAM map under teacher forcing, save the maps and overlays, and, where
the data has lesion masks (the phantom), score localisation against a uniform-map baseline.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from dataset.annotations import load_annotations
from dataset.images import load_scan
from dataset.naming import safe_file_name
from dataset.runtime import prepare_run
from dataset.splits import select_rows
from dataset.transforms import build_scan_transform
from models import build_vlm, format_prompt, generate_answers
from models.prompting import resolve_repetition_penalty
from models.registry import open_model, resolve_model
from saliency.explain import explain_report, save_explanation, score_explanation
from saliency.gradcam import GradCamSettings, PhraseGradCam
from saliency.localisation import crop_mask, load_masks, summarise_scores
from saliency.overlays import OverlayStyle
from saliency.phrases import build_vocabulary
from saliency.sanity import map_similarity, randomised_vision_copy, summarise_randomisation

logger = logging.getLogger(__name__)

REPORT_SOURCES = ("generate", "annotation")


def load_model_for_saliency(entry_cfg: Mapping[str, Any], model_cfg: Mapping[str, Any] | None = None,
                            tokenizer_texts: list[str] | None = None):
    """Load the registry model Grad-CAM runs on (it needs local weights and gradients).

    Args:
        entry_cfg: the `pretrained_models` entry.
        model_cfg: the `model` config, for a `new` (untrained) build.
        tokenizer_texts: text for a `new` build's tokenizer.

    Returns:
        (model, processor) in eval mode.

    Raises:
        dataset.errors.ConfigError: an `openai` entry (no gradients through an API).
    """
    resolved = resolve_model(entry_cfg)
    if resolved.kind == "new":
        model, processor = build_vlm(model_cfg, tokenizer_texts or [])
        return model.eval(), processor
    return open_model(resolved, needs="Grad-CAM")


def _reports(task: DictConfig, model, processor, rows: pd.DataFrame, views: list) -> list[str]:
    source = task.report_source
    if source not in REPORT_SOURCES:
        raise ValueError(f"dataset.task.report_source={source!r}; use one of {REPORT_SOURCES}")
    if source == "annotation":
        if "report" not in rows.columns:
            raise ValueError("dataset.task.report_source=annotation but the annotation table has no report column")
        return [str(r) if isinstance(r, str) else "" for r in rows["report"]]
    return generate_answers(model, processor, views, [task.question] * len(views),
                            max_new_tokens=int(task.max_new_tokens), batch_size=int(task.generation_batch_size),
                            progress=True, repetition_penalty=resolve_repetition_penalty(
                                task.get("repetition_penalty"), "dataset.task.repetition_penalty"))


def run_visual_language_gradcam(cfg: DictConfig) -> dict[str, Any]:
    """Explain generated reports with Grad-CAM and score the maps against lesion masks.

    Args:
        cfg: the composed `visual_language_gradcam` config (dataset, its task
            `language_visual_attention`, `pretrained_models`, `saliency`).

    Returns:
        `run_dir`, `images`, `phrases`, `seconds_per_phrase`, `layer`, and `summary` (per-biomarker
        localisation rows; empty without masks).
    """
    run_dir = prepare_run(cfg)
    task, settings = cfg.dataset.task, cfg.saliency
    table = load_annotations(cfg.dataset.annotations_file, cfg.dataset.images_dir)
    rows = select_rows(table, task.split, task.max_images, seed=int(cfg.seed), setting="dataset.task.split")
    rows = rows.sort_values("image_id").reset_index(drop=True)
    texts = [r for r in table.get("report", pd.Series(dtype=str)).dropna().astype(str)]
    model, processor = load_model_for_saliency(cfg.pretrained_models, cfg.model, texts)
    transform = build_scan_transform(int(cfg.dataset.crop_size),
                                     image_size=(int(cfg.dataset.image_height), int(cfg.dataset.image_width)))
    views = [transform(load_scan(path)) for path in rows["image_file"]]
    mask_roots = [Path(cfg.dataset.images_dir), Path(cfg.dataset.annotations_file).parent]

    start = time.perf_counter()
    reports = _reports(task, model, processor, rows, views)
    generation_seconds = time.perf_counter() - start
    vocabulary = build_vocabulary(**OmegaConf.to_container(task.vocabulary, resolve=True))
    explainer = PhraseGradCam(model, GradCamSettings(**OmegaConf.to_container(settings.gradcam, resolve=True)))
    sanity_images = int(settings.sanity_check_images)
    randomised = PhraseGradCam(randomised_vision_copy(model, seed=int(cfg.seed)), explainer.settings) \
        if sanity_images > 0 else None
    context = {"processor": processor, "question": task.question, "vocabulary": vocabulary,
               "include_negated": bool(task.include_negated)}
    style = OverlayStyle(**{k: v for k, v in OmegaConf.to_container(settings.overlay).items()
                            if k not in ("save", "max_images")})
    figures_for = settings.overlay.get("max_images")
    figures_for = len(rows) if figures_for is None else int(figures_for)
    tolerance = int(settings.localisation.pointing_tolerance_px)
    sanity = {"similarities": [], "model_rows": [], "randomised_rows": []}

    score_rows, records, attribution_seconds, phrase_count = [], [], 0.0, 0
    for i, ((_, row), view, report) in enumerate(tqdm(list(zip(rows.iterrows(), views, reports)), desc="saliency")):
        image_id, view_array = str(row["image_id"]), np.asarray(view)
        masks = _view_masks(row, transform, mask_roots) if "mask_path" in rows.columns else None
        explanation = explain_report(explainer, image=view, image_id=image_id, report=report,
                                     prompt_formatter=format_prompt, **context)
        attribution_seconds += explanation.seconds
        phrase_count += len(explanation.phrases)
        save_explanation(run_dir / "images" / safe_file_name(image_id), explanation, view_array, style, masks,
                         bool(settings.overlay.save) and i < figures_for)
        rows_here = score_explanation(explanation, masks, view_array.shape[:2], tolerance)
        score_rows.extend(rows_here)
        records.append({"image_id": image_id, "folder": f"images/{safe_file_name(image_id)}", "report": report,
                        "phrases": [p.text for p in explanation.phrases], "seconds": explanation.seconds})
        if randomised is not None and i < sanity_images and explanation.phrases:
            control = explain_report(randomised, image=view, image_id=image_id, report=report,
                                     prompt_formatter=format_prompt, **context)
            sanity["similarities"].extend(map_similarity(explanation.maps, control.maps).tolist())
            sanity["model_rows"].extend(rows_here)
            sanity["randomised_rows"].extend(score_explanation(control, masks, view_array.shape[:2], tolerance))
    timing = {
        "images": len(records), "phrases": phrase_count, "layer": explainer.layer_name,
        "generation_seconds": generation_seconds, "attribution_seconds": attribution_seconds,
        "seconds_per_phrase": attribution_seconds / phrase_count if phrase_count else None,
        "torch_threads": torch.get_num_threads(), "model": str(cfg.pretrained_models.get("name")),
    }
    checks = {"randomisation_check": summarise_randomisation(**sanity)} if randomised is not None else {}
    return _write_results(run_dir, records, score_rows, timing, checks)


def _view_masks(row: pd.Series, transform, roots: list[Path]) -> dict[str, np.ndarray] | None:
    """The row's lesion masks cropped to the model's view; a relative `mask_path` starts, like
    `image_path`, from the images folder (or else the table's folder)."""
    path = row.get("mask_path")
    if not isinstance(path, str) or not path:
        return None
    candidates = [Path(path)] if Path(path).is_absolute() else [root / path for root in roots]
    full = next((c for c in candidates if c.is_file()), candidates[0])
    return {k: crop_mask(v, transform) for k, v in load_masks(full).items()}


def _write_results(run_dir: Path, records: list[dict], score_rows: list[dict], timing: dict,
                   checks: dict) -> dict[str, Any]:
    with (run_dir / "reports.jsonl").open("w") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    scores = pd.DataFrame(score_rows)
    scores.to_csv(run_dir / "localisation_scores.csv", index=False)
    scored = [r for r in score_rows if r.get("scored")]
    summary = summarise_scores(scored)
    summary.to_csv(run_dir / "localisation_summary.csv", index=False)
    summary_records = json.loads(summary.to_json(orient="records"))
    (run_dir / "localisation_summary.json").write_text(json.dumps(
        {"per_biomarker": summary_records, "unscored_phrases": len(score_rows) - len(scored), **checks, **timing},
        indent=2))
    (run_dir / "timing.json").write_text(json.dumps(timing, indent=2))
    if summary.empty:
        logger.info("no phrase had a lesion mask to score against")
    else:
        logger.info("localisation per biomarker (map vs uniform baseline):\n%s",
                    summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if checks:
        logger.info("randomised-vision sanity check: %s", json.dumps(checks["randomisation_check"]))
    logger.info("%d images, %d phrases, %s s per phrase; outputs in %s", timing["images"], timing["phrases"],
                f"{timing['seconds_per_phrase']:.3f}" if timing["seconds_per_phrase"] else "n/a", run_dir)
    return {"run_dir": run_dir, "summary": summary_records, **checks, **timing}
