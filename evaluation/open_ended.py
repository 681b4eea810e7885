"""Open-ended evaluation: each model writes a report per test image; a judge extracts the stage,
referral and ten findings from it, which are scored against the labels like closed-ended answers.

`run_open_ended_evaluation(cfg)` is what `run/open_ended_evaluation.py` calls. Besides the
closed-ended outputs (per-task metrics with CIs, comparisons, figures) it writes `reports.jsonl`
and `report_accuracy.csv`: per model, the mean share of the twelve items a report gets right, the
share of reports that get all of them right, and the shares of reports that contradict themselves
or repeat a sentence (`evaluation.report_quality`), with patient-bootstrap CIs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from dataset.runtime import prepare_run
from evaluation.answer_modes import ReportCache
from evaluation.closed_ended import score_and_write
from evaluation.data import load_evaluation_table, load_model_images
from evaluation.judge import build_judge
from evaluation.outputs import PREDICTIONS_FILE, write_jsonl
from evaluation.report_quality import report_quality
from evaluation.scoring import majority_predictions
from evaluation.statistics import patient_bootstrap
from evaluation.tasks import Task, build_tasks
from evaluation.vision_models import build_answerer
from models.registry import load_registry_entry, model_names

logger = logging.getLogger(__name__)
REPORTS_FILE = "reports.jsonl"
REPORT_ACCURACY_CSV = "report_accuracy.csv"


def report_tasks() -> list[Task]:
    """Staging, referral and the ten biomarker tasks (questions unused: the judge reads reports)."""
    spec = {"question": ""}
    return build_tasks("staging", spec) + build_tasks("referral", spec) + build_tasks("biomarkers", spec)


def write_reports(name: str, cfg: DictConfig, image_ids: list[str], images, question: str) -> list[str]:
    """One report per image from registry model `name` (a local model's reports already written
    for the same weights, image, question and token limit, e.g. by a two-step run, are reused)."""
    answerer = build_answerer(load_registry_entry(name, cfg), cfg.paths, cfg.evaluation.generation)
    try:
        return ReportCache().get_or_write(answerer, image_ids, images, question)
    finally:
        answerer.close()


def report_accuracy(records: pd.DataFrame, n_resamples: int, seed: int) -> pd.DataFrame:
    """Per model: mean share of items right per report, and share of reports right on every item."""
    rows = []
    for model, group in records.groupby("model", sort=False):
        per_image = group.assign(correct=group["label"] == group["prediction"]).groupby(
            ["image_id", "patient_id"], sort=False)["correct"]
        share = per_image.mean().reset_index()
        complete = per_image.all().reset_index()
        for metric, frame in (("item_accuracy", share), ("all_items_correct", complete)):
            values = frame["correct"].to_numpy(dtype=float)
            interval = patient_bootstrap(lambda idx, v=values: float(v[idx].mean()),
                                         frame["patient_id"].tolist(), n_resamples=n_resamples, seed=seed)
            rows.append({"model": model, "metric": metric, "value": float(values.mean()),
                         "ci_low": interval.low, "ci_high": interval.high, "n_images": len(values)})
    return pd.DataFrame(rows)


def run_open_ended_evaluation(cfg: DictConfig) -> dict[str, Any]:
    """Generate reports with each configured model, judge them, score them.

    Returns:
        {"run_dir", "results", "comparisons", "report_accuracy", "files"}.
    """
    run_dir = prepare_run(cfg)
    task_cfg = cfg.dataset.task
    tasks = report_tasks()
    table, rows = load_evaluation_table(cfg.dataset, str(cfg.evaluation.split), cfg.evaluation.max_images)
    images = load_model_images(rows, cfg.dataset)
    judge = build_judge(str(cfg.evaluation.judge), cfg.model.get("language_model"), cfg.paths,
                        str(task_cfg.judge_prompt))
    report_lines, records, judge_failures = [], [], {}
    for name in model_names(cfg):
        reports = write_reports(name, cfg, rows["image_id"].astype(str).tolist(), images,
                                str(task_cfg.report_question))
        extracted = judge.extract(reports, tasks)
        failures = list(getattr(judge, "last_failures", None) or [None] * len(reports))
        judge_failures[name] = sum(f is not None for f in failures)
        if judge_failures[name]:
            logger.warning("the judge failed on %d of %d reports of %s (e.g. %s); they are left out of the scores, "
                           "not counted as %s's invalid answers: rerun (the reports of API models are cached)",
                           judge_failures[name], len(reports), name, next(f for f in failures if f), name)
        for (_, row), report, found, failure in zip(rows.iterrows(), reports, extracted, failures):
            report_lines.append({"model": name, "image_id": str(row["image_id"]), "patient_id": str(row["patient_id"]),
                                 "prompt": str(task_cfg.report_question), "report": report,
                                 "judge": judge.name, "extracted": found, "judge_error": failure})
            if failure is not None:
                continue
            records += [{"model": name, "task": t.name, "image_id": str(row["image_id"]),
                         "patient_id": str(row["patient_id"]), "label": t.label_of(row),
                         "prediction": found[t.name], "raw_answer": report, "mode": "open_ended"}
                        for t in tasks]
    write_jsonl(run_dir / REPORTS_FILE, report_lines)
    if report_lines and not records:
        from curriculum.backends.base import BackendError

        first = next(line["judge_error"] for line in report_lines if line["judge_error"])
        raise BackendError(f"the judge ({judge.name}) failed on every report ({first}); the reports are in "
                           f"{run_dir / REPORTS_FILE}. Check model/language_model and rerun")
    write_jsonl(run_dir / PREDICTIONS_FILE, records)
    stats = cfg.evaluation.statistics
    accuracy = (report_accuracy(pd.DataFrame(records), int(stats.n_resamples), int(stats.seed))
                if records else pd.DataFrame())
    if report_lines:
        quality = report_quality(pd.DataFrame(report_lines), int(stats.n_resamples), int(stats.seed))
        accuracy = pd.concat([accuracy, quality], ignore_index=True)
    accuracy.to_csv(run_dir / REPORT_ACCURACY_CSV, index=False)
    for _, r in accuracy.iterrows():
        logger.info("%s %s: %.3f [%.3f, %.3f]", r["model"], r["metric"], r["value"],
                    r["ci_low"], r["ci_high"])
    extra = {"models": model_names(cfg), "judge": judge.name, "n_images": len(rows), "judge_failures": judge_failures,
             "report_accuracy": accuracy.replace({np.nan: None}).to_dict("records")}
    train = table[table["split"] == "train"] if "split" in table.columns else None
    baseline = [r for task in tasks for r in majority_predictions(task, rows, train).to_dict("records")]
    out = score_and_write(Path(run_dir), records + baseline, tasks, cfg, extra)
    return {**out, "report_accuracy": accuracy}
