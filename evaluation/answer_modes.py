"""The three ways a closed-ended task is put to a model.

- `two_step`: the reference protocol. The model writes a report about the image, then answers the
  task question with its own report as context; the answer text is parsed.
- `direct`: the task question alone; the answer text is parsed.
- `likelihood`: every option's log-probability given image and question (summed over its tokens,
  or per token with `evaluation.generation.option_score=mean`); the most probable option is the
  prediction (no generation, no parsing, never invalid).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from evaluation.answer_cache import answer_key
from evaluation.parser import parse_answer
from evaluation.tasks import Task
from evaluation.vision_models import VisionAnswerer, image_pixels

logger = logging.getLogger(__name__)
ANSWER_MODES = ("two_step", "direct", "likelihood")


@dataclass
class Answer:
    """One model's answer to one task on one image."""

    prediction: str | None
    prompt: str
    raw_answer: str | None = None
    report: str | None = None
    option_scores: dict[str, float] | None = None
    mode: str = ""


@dataclass
class ReportCache:
    """Reports written in step one of `two_step`, reused by every task of the same model, and by
    later runs when the model keeps them on disk (`LocalVisionModel.report_cache`: greedy reports
    of the same weights, image and question, keyed by `local_model_identity`)."""

    reports: dict[tuple[str, str], str] = field(default_factory=dict)

    def get_or_write(self, answerer: VisionAnswerer, image_ids: Sequence[str], images: Sequence[Image.Image],
                     question: str) -> list[str]:
        disk, identity = getattr(answerer, "report_cache", None), getattr(answerer, "identity", None)
        keys = [answer_key("local", identity, image_pixels(image), question, {}) if disk is not None and identity
                else None for image in images]
        for image_id, key in zip(image_ids, keys):
            found = disk.get(key) if key else None
            if found is not None:
                self.reports.setdefault((answerer.name, image_id), found)
        missing = [i for i, image_id in enumerate(image_ids) if (answerer.name, image_id) not in self.reports]
        if len(missing) < len(image_ids):
            logger.info("%s: %d of %d reports reused", answerer.name, len(image_ids) - len(missing), len(image_ids))
        if missing:
            written = answerer.generate([images[i] for i in missing], [question] * len(missing))
            for i, report in zip(missing, written):
                self.reports[(answerer.name, image_ids[i])] = report
                if keys[i]:
                    disk.put(keys[i], report, model=answerer.name, image_id=image_ids[i], prompt=question)
        return [self.reports[(answerer.name, image_id)] for image_id in image_ids]


def effective_mode(answerer: VisionAnswerer, mode: str, fallback: str) -> str:
    """The mode actually used: `fallback` when `likelihood` is asked of a text-only endpoint.

    Raises:
        ValueError: unknown mode.
    """
    if mode not in ANSWER_MODES or fallback not in ANSWER_MODES[:2]:
        raise ValueError(f"answer_mode {mode!r} / text_only_fallback {fallback!r}: choose answer_mode from "
                         f"{', '.join(ANSWER_MODES)} and the fallback from two_step, direct")
    if mode == "likelihood" and not answerer.supports_likelihood:
        logger.warning("%s cannot score options (no token probabilities); using %s instead",
                       answerer.name, fallback)
        return fallback
    return mode


def answer_by_likelihood(answerer: VisionAnswerer, tasks: Sequence[Task],
                         images: Sequence[Image.Image]) -> dict[str, list[Answer]]:
    """Every task's likelihood answers (the option scored highest) on the same images.

    Several tasks (the ten biomarkers) go to the answerer's `score_questions` when it has one, so
    each image's shared prompt start runs once for all of them; otherwise one `score_options` call
    per task.

    Returns:
        task name -> one Answer per image.
    """
    options = [[task.option_texts[c] for c in task.classes] for task in tasks]
    ends = [task.complete_answer for task in tasks]
    if len(tasks) > 1 and hasattr(answerer, "score_questions"):
        scores = answerer.score_questions(images, [task.question for task in tasks], options, ends)
    else:
        scores = [answerer.score_options(images, task.question, o, end_of_turn=e)
                  for task, o, e in zip(tasks, options, ends)]
    return {task.name: [Answer(prediction=task.classes[int(row.argmax())], prompt=task.question,
                               option_scores={c: float(v) for c, v in zip(task.classes, row)}, mode="likelihood")
                        for row in task_scores]
            for task, task_scores in zip(tasks, scores)}


def answer_task(answerer: VisionAnswerer, task: Task, image_ids: Sequence[str], images: Sequence[Image.Image],
                mode: str, prompts: Mapping[str, Any], reports: ReportCache | None = None) -> list[Answer]:
    """Ask one task of one model on a list of images.

    Args:
        answerer: the model.
        task: the task.
        image_ids: ids of `images` (keys of the report cache).
        images: model-ready scans (centre crops).
        mode: one of ANSWER_MODES (already made effective for this answerer).
        prompts: `report_question` and `two_step_template` (with `{report}` and `{question}`).
        reports: cache of step-one reports, shared across tasks.

    Returns:
        One Answer per image.
    """
    if mode == "likelihood":
        return answer_by_likelihood(answerer, [task], images)[task.name]
    if mode == "direct":
        texts = answerer.generate(images, [task.question] * len(images))
        return [Answer(parse_answer(t, task), task.question, raw_answer=t, mode=mode) for t in texts]
    if mode == "two_step":
        cache = reports if reports is not None else ReportCache()
        written = cache.get_or_write(answerer, image_ids, images, str(prompts["report_question"]))
        template = str(prompts["two_step_template"])
        questions = [template.format(report=r, question=task.question) for r in written]
        texts = answerer.generate(images, questions)
        return [Answer(parse_answer(t, task), q, raw_answer=t, report=r, mode=mode)
                for t, q, r in zip(texts, questions, written)]
    raise ValueError(f"unknown answer mode {mode!r}; choose one of {', '.join(ANSWER_MODES)}")
