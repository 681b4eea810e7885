"""Closed-ended evaluation: several registry models, one task group, the same test images.

`run_closed_ended_evaluation(cfg)` is what `run/closed_ended_evaluation.py` calls. It writes into
the run folder: `predictions.jsonl` (one line per model, task and image), `metrics.json`,
`metrics.csv`, `per_class.csv`, `comparisons.csv` and `figures/`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from dataset.runtime import prepare_run
from evaluation.answer_modes import Answer, ReportCache, answer_by_likelihood, answer_task, effective_mode
from evaluation.calibration import OBJECTIVES, fit_option_biases
from evaluation.data import load_evaluation_table, load_model_images
from evaluation.figures import write_figures
from evaluation.grounding import finding_separation, image_reliance
from evaluation.model_cards import refresh_model_cards
from evaluation.outputs import PREDICTIONS_FILE, write_jsonl, write_metrics
from evaluation.scoring import CALIBRATED_SUFFIX, PREDICTION_COLUMNS, majority_predictions, score_all
from evaluation.tasks import Task, build_tasks
from evaluation.vision_models import build_answerer
from models.registry import load_registry_entry, model_names

logger = logging.getLogger(__name__)


def build_task_list(task_cfg: DictConfig) -> list[Task]:
    """The tasks of the selected `dataset/task` config."""
    spec = OmegaConf.to_container(task_cfg, resolve=True)
    return build_tasks(str(spec["group"]), spec, spec.get("biomarkers"))


def _prediction_rows(model: str, task: Task, rows: pd.DataFrame, answers) -> list[dict[str, Any]]:
    return [{"model": model, "task": task.name, "image_id": str(row["image_id"]),
             "patient_id": str(row["patient_id"]), "label": task.label_of(row), "prediction": a.prediction,
             "prompt": a.prompt, "raw_answer": a.raw_answer, "report": a.report,
             "option_scores": a.option_scores, "mode": a.mode}
            for (_, row), a in zip(rows.iterrows(), answers)]


@dataclass
class CalibrationSet:
    """The labelled held-out images that option biases are fitted on (likelihood mode)."""

    split: str
    rows: pd.DataFrame
    images: list
    objective: str = "macro_f1"

    @property
    def image_ids(self) -> list[str]:
        return self.rows["image_id"].astype(str).tolist()


def load_calibration_set(cfg: DictConfig) -> CalibrationSet | None:
    """The `evaluation.calibration` split, or None when calibration is off or cannot apply.

    Raises:
        ValueError: the calibration split is the evaluated split (its labels would leak), or the
            objective is unknown.
        dataset.annotations.AnnotationError: the table has no such split.
    """
    evaluation_cfg = cfg.evaluation
    calibration = evaluation_cfg.calibration
    split = calibration.split
    if not split or str(evaluation_cfg.answer_mode) != "likelihood":
        return None
    if str(split) == str(evaluation_cfg.split):
        raise ValueError(f"evaluation.calibration.split={split} is the evaluated split: fitting option biases "
                         "on the images being scored leaks their labels. Choose another split, or null to turn "
                         "calibration off")
    objective = str(calibration.objective)
    if objective not in OBJECTIVES:
        raise ValueError(f"evaluation.calibration.objective={objective} is unknown; choose one of "
                         f"{', '.join(OBJECTIVES)}")
    _, rows = load_evaluation_table(cfg.dataset, str(split), calibration.max_images)
    return CalibrationSet(str(split), rows, load_model_images(rows, cfg.dataset), objective)


def calibrate(answers: list[Answer], calibration_answers: list[Answer], labels: list[str],
              task: Task, objective: str = "macro_f1") -> tuple[list[Answer], dict[str, float]]:
    """Fit option biases on the calibration answers and re-decide `answers` with them.

    Returns:
        (calibrated copies of `answers`, class id -> bias with 0 for the first class); the raw
        answers are left as they are.
    """
    classes = list(task.classes)
    scores = np.array([[a.option_scores[c] for c in classes] for a in calibration_answers])
    biases = fit_option_biases(scores, labels, classes, objective)
    decided = [replace(a, prediction=classes[int(np.argmax([a.option_scores[c] + b for c, b in zip(classes, biases)]))])
               for a in answers]
    return decided, {c: float(b) for c, b in zip(classes, biases)}


@dataclass
class ModelEvaluation:
    """What one model's evaluation yields: prediction records (raw answers under the model's
    name, calibrated ones under `<name>+calibrated`), option biases and image-reliance gaps per task."""

    records: list[dict[str, Any]]
    biases: dict[str, dict[str, float]]
    grounding: dict[str, dict[str, Any]]


def evaluate_model(name: str, cfg: DictConfig, tasks: list[Task], rows: pd.DataFrame, images,
                   calibration: CalibrationSet | None = None) -> ModelEvaluation:
    """Every task of one registry model on the evaluation images.

    The model's raw answers (the option it scores highest, or its parsed text) are its headline
    predictions; with a calibration set, the same option scores re-decided with biases fitted on
    that split are added as a second entry, `<name>+calibrated`. In likelihood mode the task's
    image-reliance gap is measured too (`evaluation.grounding.max_images`; 0 turns it off).
    """
    evaluation_cfg = cfg.evaluation
    answerer = build_answerer(load_registry_entry(name, cfg), cfg.paths, evaluation_cfg.generation)
    try:
        mode = effective_mode(answerer, str(evaluation_cfg.answer_mode),
                              str(evaluation_cfg.text_only_fallback))
        result = ModelEvaluation([], {}, {})
        logger.info("%s: %s (%s, %d images)", name, ", ".join(t.name for t in tasks), mode, len(rows))
        if mode != "likelihood":
            reports, image_ids = ReportCache(), rows["image_id"].astype(str).tolist()
            for task in tasks:
                answers = answer_task(answerer, task, image_ids, images, mode, evaluation_cfg.prompts, reports)
                result.records += _prediction_rows(name, task, rows, answers)
            return result
        # Every task at once: the biomarkers share each image's prompt start.
        scored = answer_by_likelihood(answerer, tasks, images)
        fitted = answer_by_likelihood(answerer, tasks, calibration.images) if calibration is not None else {}
        for task in tasks:
            held_out = (calibration, fitted[task.name]) if calibration is not None else None
            _add_likelihood_task(result, name, task, rows, scored[task.name], cfg, held_out)
        return result
    finally:
        answerer.close()


def _add_likelihood_task(result: ModelEvaluation, name: str, task: Task, rows: pd.DataFrame,
                         answers: list[Answer], cfg: DictConfig,
                         calibration: tuple[CalibrationSet, list[Answer]] | None) -> None:
    """One task's likelihood answers into `result`: the raw records, the image-reliance gap and,
    with (calibration set, its answers), the calibrated records and their biases."""
    result.records += _prediction_rows(name, task, rows, answers)
    grounding_images = cfg.evaluation.grounding.max_images
    if grounding_images is None or int(grounding_images) > 0:
        gap = result.grounding[task.name] = image_reliance(task, rows, answers, grounding_images, int(cfg.seed))
        logger.info("%s: %s image-reliance gap %.3f nats (answer loss %.3f own scan, %.3f swapped)",
                    name, task.name, gap["gap"], gap["answer_loss"], gap["swapped_answer_loss"])
    if calibration is None:
        return
    calibration_set, fitted = calibration
    labels = [task.label_of(row) for _, row in calibration_set.rows.iterrows()]
    calibrated, result.biases[task.name] = calibrate(answers, fitted, labels, task, calibration_set.objective)
    result.records += _prediction_rows(name + CALIBRATED_SUFFIX, task, rows, calibrated)
    logger.info("%s: %s option biases from %d %s images: %s", name, task.name, len(labels),
                calibration_set.split, {c: round(b, 3) for c, b in result.biases[task.name].items()})


def summarise(results: list[dict[str, Any]]) -> None:
    """Log the headline numbers of every model and task."""
    for r in results:
        m = r["metrics"]
        logger.info("%-28s %-30s acc %.3f  macro-F1 %.3f  ref-F1 %.3f [%.3f, %.3f]  invalid %.1f%%",
                    r["model"], r["task"], m["accuracy"]["value"], m["macro_f1"]["value"],
                    m["reference_f1"]["value"], m["reference_f1"]["ci_low"], m["reference_f1"]["ci_high"],
                    100 * m["invalid_rate"]["value"])


def score_and_write(run_dir: Path, records: list[dict[str, Any]], tasks: list[Task], cfg: DictConfig,
                    extra: dict[str, Any]) -> dict[str, Any]:
    """Metrics, comparisons, figures and files for a set of prediction records."""
    stats_cfg = cfg.evaluation.statistics
    frame = pd.DataFrame(records, columns=list(PREDICTION_COLUMNS)) if records else pd.DataFrame(
        columns=list(PREDICTION_COLUMNS))
    frame = frame.astype(object).where(frame.notna(), None)
    results, comparisons = score_all(frame, tasks, int(stats_cfg.n_resamples), int(stats_cfg.seed))
    summarise(results)
    paths = write_metrics(run_dir, results, comparisons, extra)
    figures = write_figures(run_dir, results) if cfg.evaluation.figures else []
    return {"run_dir": run_dir, "results": results, "comparisons": comparisons,
            "files": {**paths, "figures": figures}}


def run_closed_ended_evaluation(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate the configured models on the configured closed-ended task group.

    Args:
        cfg: the composed `closed_ended_evaluation` config.

    Returns:
        {"run_dir", "results", "comparisons", "files"}; `results` has one entry per model and task,
        the majority-class baseline included.
    """
    run_dir = prepare_run(cfg)
    tasks = build_task_list(cfg.dataset.task)
    table, rows = load_evaluation_table(cfg.dataset, str(cfg.evaluation.split), cfg.evaluation.max_images)
    images = load_model_images(rows, cfg.dataset)
    names = model_names(cfg)
    calibration = load_calibration_set(cfg)
    records: list[dict[str, Any]] = []
    biases: dict[str, dict[str, dict[str, float]]] = {}
    grounding: dict[str, dict[str, dict[str, Any]]] = {}
    for name in names:
        evaluated = evaluate_model(name, cfg, tasks, rows, images, calibration)
        records += evaluated.records
        if evaluated.biases:
            biases[name] = evaluated.biases
        if evaluated.grounding:
            grounding[name] = evaluated.grounding
    train = table[table["split"] == "train"] if "split" in table.columns else None
    baseline = [r for task in tasks for r in majority_predictions(task, rows, train).to_dict("records")]
    write_jsonl(run_dir / PREDICTIONS_FILE, records)
    extra = {"models": names, "tasks": [t.name for t in tasks],
             "answer_mode": str(cfg.evaluation.answer_mode), "split": str(cfg.evaluation.split),
             "n_images": len(rows),
             "calibration": {"split": calibration.split, "n_images": len(calibration.rows),
                             "objective": calibration.objective,
                             "option_biases": biases,
                             "models": [n + CALIBRATED_SUFFIX for n in biases]} if calibration is not None else None,
             "grounding": grounding, "finding_separation": finding_separation(
                 [r for r in records if not str(r["model"]).endswith(CALIBRATED_SUFFIX)])}
    for name, separation in extra["finding_separation"].items():
        logger.info("%s: presence margins correlate %.3f between biomarkers (labels %.3f)", name,
                    separation["margin_correlation"] or float("nan"), separation["label_correlation"] or float("nan"))
    output = score_and_write(run_dir, records + baseline, tasks, cfg, extra)
    refresh_model_cards(cfg, names, output, extra)  # each evaluated model folder's README.md
    return output
