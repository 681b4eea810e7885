"""Scoring predictions made elsewhere (human graders, other systems) with the same parser and
statistics as our models, so they can be compared on the same test images.

Input: JSONL files, one object per line with `image_id` and one of
- `label`: a class id (`intermediate`, `routine`, `present`, ...) - the grader's answer;
- `text`: a free-text answer or report, parsed like a model's answer;
- `prediction`: a class id or null (as in our own `predictions.jsonl`, so earlier runs can be
  scored beside external files);
plus optional `task` (needed for `label` when the task group has several tasks; a `text` without
`task` is parsed for every task of the group, e.g. one report per image for all ten biomarkers)
and optional `model` (the grader's or system's name; default: the file name).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from dataset.errors import InputError
from dataset.runtime import prepare_run
from evaluation.closed_ended import build_task_list, score_and_write
from evaluation.data import load_evaluation_table
from evaluation.outputs import PREDICTIONS_FILE, write_jsonl
from evaluation.parser import parse_answer
from evaluation.scoring import majority_predictions
from evaluation.tasks import Task

logger = logging.getLogger(__name__)


class PredictionFileError(InputError):
    """A predictions file is malformed; the message names the file, line and field."""


def read_prediction_lines(path: str | Path) -> list[dict[str, Any]]:
    """Parse a JSONL predictions file, checking every line has `image_id` and an answer.

    Raises:
        PredictionFileError: missing or empty file, bad JSON or missing fields (file and line named).
    """
    path = Path(path)
    if not path.is_file():
        raise PredictionFileError(f"predictions file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise PredictionFileError(f"{path}: not UTF-8 text (byte {err.start}); save it as UTF-8 JSONL") from None
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except json.JSONDecodeError as err:
            raise PredictionFileError(f"{path}:{number}: not valid JSON ({err.msg})") from None
        if not isinstance(item, dict) or "image_id" not in item:
            raise PredictionFileError(f"{path}:{number}: each line needs an 'image_id' field")
        if not any(k in item for k in ("prediction", "label", "text")):
            raise PredictionFileError(f"{path}:{number}: give the answer as 'label' (a class id) or 'text'")
        if not isinstance(item["image_id"], (str, int)) or isinstance(item["image_id"], bool) \
                or str(item["image_id"]).strip() == "":
            raise PredictionFileError(f"{path}:{number}: 'image_id' must be a non-empty string, got "
                                      f"{item['image_id']!r}")
        for key in ("label", "prediction", "text", "task", "model"):
            value = item.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int, float))):
                raise PredictionFileError(f"{path}:{number}: '{key}' must be text (or null), got "
                                          f"{type(item[key]).__name__} {item[key]!r}")
        lines.append({**item, "_where": f"{path}:{number}", "_file": path.stem})
    if not lines:
        raise PredictionFileError(f"{path} holds no predictions (no line with an 'image_id'); give one JSON "
                                  'object per line, e.g. {"image_id": "scan_0001", "label": "intermediate"}')
    return lines


def _answer_for(item: dict[str, Any], task: Task) -> tuple[str | None, str | None]:
    """(prediction, raw text) of one line for one task."""
    if "prediction" in item or "label" in item:
        value = item.get("prediction", item.get("label"))
        if value is None:
            return None, None
        value = str(value)
        if value in task.classes:
            return value, value
        parsed = parse_answer(value, task)  # e.g. "Intermediate AMD" instead of the id
        if parsed is None:
            raise PredictionFileError(f"{item['_where']}: label {value!r} is not one of "
                                      f"{', '.join(task.classes)} for task {task.name}")
        return parsed, value
    text = item.get("text")
    return parse_answer(text, task), text


def predictions_to_records(lines: Sequence[dict[str, Any]], tasks: Sequence[Task], rows,
                           default_model: str | None = None) -> list[dict[str, Any]]:
    """Prediction records for every (model, task, test image); images a model left out count as
    invalid answers (logged), never dropped.

    Raises:
        PredictionFileError: an image id not in the evaluated split, an unknown task, a `label`
            line without `task` where the group has several tasks, or a duplicate answer.
    """
    by_id = {str(row["image_id"]): row for _, row in rows.iterrows()}
    task_names = {t.name: t for t in tasks}
    answers: dict[tuple[str, str, str], dict[str, Any]] = {}
    for item in lines:
        image_id = str(item["image_id"])
        if image_id not in by_id:
            raise PredictionFileError(f"{item['_where']}: image_id {image_id!r} is not in the "
                                      "evaluated split")
        task_name = item.get("task")
        if task_name is not None and task_name not in task_names:
            raise PredictionFileError(f"{item['_where']}: task {task_name!r} is not one of "
                                      f"{', '.join(task_names)}")
        if task_name is None and len(tasks) > 1 and "text" not in item:
            raise PredictionFileError(f"{item['_where']}: add a 'task' field ({', '.join(task_names)})")
        model = str(item.get("model") or default_model or item["_file"])
        for task in [task_names[task_name]] if task_name else tasks:
            key = (model, task.name, image_id)
            if key in answers:
                raise PredictionFileError(f"{item['_where']}: a second answer of {model} for {image_id} "
                                          f"({task.name})")
            prediction, raw = _answer_for(item, task)
            answers[key] = {"prediction": prediction, "raw_answer": raw}
    models = list(dict.fromkeys(k[0] for k in answers))
    records = []
    for model in models:
        for task in tasks:
            missing = [i for i in by_id if (model, task.name, i) not in answers]
            if missing:
                logger.warning("%s gave no answer for %d %s images (counted invalid), e.g. %s",
                               model, len(missing), task.name, missing[0])
            for image_id, row in by_id.items():
                answer = answers.get((model, task.name, image_id), {"prediction": None, "raw_answer": None})
                records.append({"model": model, "task": task.name, "image_id": image_id,
                                "patient_id": str(row["patient_id"]), "label": task.label_of(row),
                                "mode": "external", **answer})
    return records


def score_external_predictions(cfg: DictConfig) -> dict[str, Any]:
    """Score one or more predictions files on the selected task group (`run/score_predictions.py`).

    Returns:
        Like `run_closed_ended_evaluation`: {"run_dir", "results", "comparisons", "files"}.
    """
    run_dir = prepare_run(cfg)
    tasks = build_task_list(cfg.dataset.task)
    table, rows = load_evaluation_table(cfg.dataset, str(cfg.evaluation.split), cfg.evaluation.max_images)
    files = cfg.predictions_files
    files = [files] if isinstance(files, str) else list(files or [])
    if not files:
        raise PredictionFileError("predictions_files is empty; name the JSONL files to score, e.g. "
                                  "predictions_files=[graders.jsonl]")
    lines = [line for f in files for line in read_prediction_lines(f)]
    records = predictions_to_records(lines, tasks, rows, cfg.model_name)
    train = table[table["split"] == "train"] if "split" in table.columns else None
    baseline = [r for task in tasks for r in majority_predictions(task, rows, train).to_dict("records")]
    write_jsonl(run_dir / PREDICTIONS_FILE, records)
    extra = {"predictions_files": [str(f) for f in files], "tasks": [t.name for t in tasks],
             "n_images": len(rows)}
    return score_and_write(run_dir, records + baseline, tasks, cfg, extra)
