"""What the web demo computes, without any web code: reports, option probabilities, Grad-CAM.

`DemoEngine` opens registry models (kept loaded; the web page's queue runs one model event at a
time) and answers for a list of model-ready views (centre crops):
- the report, written exactly as `run/demos/inference.py` writes it (same answerer, same
  generation settings), so both show the same text for the same scan;
- stage, referral and each biomarker as option probabilities: the closed-ended tasks' option
  log-likelihoods (`evaluation.likelihood` via the answerer, scored as `demo.option_score`), plus
  the option biases of the model's latest closed-ended evaluation when its model card records them
  for that scoring, through a softmax;
- per finding phrase of the report, its Grad-CAM map (`saliency.explain_report`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from PIL import Image

from dataset.clinical import load_knowledge
from dataset.transforms import build_scan_transform
from evaluation.answer_modes import answer_by_likelihood
from evaluation.tasks import PRESENT, Task, build_tasks
from evaluation.vision_models import build_answerer
from evaluation.web_demo.inputs import DemoInputError
from models import format_prompt
from models.model_card import calibration_biases
from models.registry import load_registry_entry, registry_names, resolve_model
from saliency import GradCamSettings, PhraseGradCam, build_vocabulary, explain_report

logger = logging.getLogger(__name__)
CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


@dataclass
class OpenModel:
    """A loaded registry model and what the demo knows about it."""

    name: str
    answerer: Any
    biases: dict[str, dict[str, float]] = field(default_factory=dict)
    explainer: PhraseGradCam | None = None


@dataclass
class OptionResult:
    """One closed-ended task on one scan."""

    task: str
    probabilities: dict[str, float]
    prediction: str
    calibrated: bool

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "probabilities": self.probabilities, "prediction": self.prediction,
                "calibrated": self.calibrated}


def softmax(values: np.ndarray) -> np.ndarray:
    """Row-wise softmax of log-scores."""
    shifted = np.exp(values - values.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def load_demo_tasks(task_configs: Sequence[str], config_dir: Path = CONFIG_DIR) -> list[Task]:
    """The closed-ended tasks the page shows, built from the evaluation's own task configs
    (`configs/dataset/task/<name>.yaml`), so option texts match what calibration biases were fitted on.

    Raises:
        FileNotFoundError: a task config does not exist.
    """
    tasks = []
    for name in task_configs:
        path = config_dir / "dataset" / "task" / f"{name}.yaml"
        if not path.is_file():
            raise FileNotFoundError(f"demo.task_configs: no task config {path}")
        spec = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
        tasks += build_tasks(str(spec["group"]), spec, spec.get("biomarkers"))
    return tasks


class DemoEngine:
    """Registry models answering for the web demo (see the module docstring).

    Args:
        cfg: the composed `web_demo` config (`paths`, `dataset`, `demo`, `saliency`, `registry_dir`).
    """

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg
        demo = cfg.demo
        self.crop_size = int(cfg.dataset.crop_size)
        image_size = (int(cfg.dataset.image_height), int(cfg.dataset.image_width))
        resize = demo.resize_to_dataset
        self.transform = build_scan_transform(self.crop_size, None, image_size=image_size if resize else None)
        self.tasks = load_demo_tasks(list(demo.task_configs))
        self.report_question = str(demo.report_question)
        self.include_negated = bool(demo.include_negated_phrases)
        self.vocabulary = build_vocabulary(**OmegaConf.to_container(cfg.saliency.vocabulary, resolve=True))
        self.gradcam = GradCamSettings(**OmegaConf.to_container(cfg.saliency.gradcam, resolve=True))
        self.knowledge = load_knowledge()
        # Entries of kind `local`: the ones with weights the demo can score and explain.
        self.model_names = registry_names(cfg.get("registry_dir"), kind="local")
        self._models: dict[str, OpenModel] = {}

    def view(self, scan: Image.Image) -> Image.Image:
        """The model's view of a grayscale scan: resized to the dataset's size, centre-cropped."""
        return self.transform(scan)

    def open(self, name: str) -> OpenModel:
        """Load a registry model once and keep it (at most `demo.max_loaded_models`).

        Raises:
            DemoInputError: unknown name, not a local model, or its folder is missing (the message
                says how to make it).
        """
        if name in self._models:
            return self._models[name]
        self.check_name(name)
        try:
            entry = load_registry_entry(name, self.cfg)
            if resolve_model(entry).kind != "local":
                raise DemoInputError(f"{name} is not a local model; the demo needs weights to score and "
                                     "explain")
            answerer = build_answerer(entry, self.cfg.paths, self.cfg.demo, "demo")
        except DemoInputError:
            raise
        except (OSError, ValueError) as err:  # missing or incomplete folder: the message names the fix
            raise DemoInputError(str(err).splitlines()[0]) from None
        except OmegaConfBaseException:  # e.g. `path: ???`, an entry the user must complete
            raise DemoInputError(f"{name}: its registry entry (configs/pretrained_models/{name}.yaml) has no "
                                 "path; set it to a local Hugging Face model folder, or pick another "
                                 "model") from None
        biases = calibration_biases(resolve_model(entry).path, str(self.cfg.demo.option_score))
        logger.info("opened %s (calibration biases for %s)", name, ", ".join(biases) or "no task")
        while len(self._models) >= max(1, int(self.cfg.demo.max_loaded_models)):
            self._models.pop(next(iter(self._models))).answerer.close()
        self._models[name] = OpenModel(name, answerer, biases)
        return self._models[name]

    def check_name(self, name: str) -> None:
        """Refuse a name that is not a local registry model, before anything runs.

        Raises:
            DemoInputError: the message lists the names the demo knows.
        """
        if name not in self.model_names:
            known = ", ".join(self.model_names) or "none"
            raise DemoInputError(f"unknown model {name!r}; choose one of: {known}")

    def reports(self, model: OpenModel, views: Sequence[Image.Image]) -> list[str]:
        """The report for each view (the same call `run/demos/inference.py` makes)."""
        return self.ask(model, views, self.report_question)

    def ask(self, model: OpenModel, views: Sequence[Image.Image], question: str) -> list[str]:
        """A free-text answer to `question` for each view."""
        return model.answerer.generate(list(views), [question] * len(views))

    def options(self, model: OpenModel, views: Sequence[Image.Image],
                tasks: Sequence[Task]) -> list[list[OptionResult]]:
        """Option probabilities of each task for each view: [view][task]."""
        results: list[list[OptionResult]] = [[] for _ in views]
        # All tasks at once: their questions share each view's image pass (as in the evaluation).
        answers = answer_by_likelihood(model.answerer, tasks, list(views))
        for task in tasks:
            classes = list(task.classes)
            scores = np.array([[a.option_scores[c] for c in classes] for a in answers[task.name]])  # [N, K]
            bias = model.biases.get(task.name)
            if bias and set(bias) == set(classes):
                scores = scores + np.array([bias[c] for c in classes])[None]
            probabilities = softmax(scores)
            for i, row in enumerate(probabilities):
                results[i].append(OptionResult(task.name, {c: float(p) for c, p in zip(classes, row)},
                                               classes[int(row.argmax())], bool(bias)))
        return results

    def explain(self, model: OpenModel, view: Image.Image, report: str, name: str) -> list[dict[str, Any]]:
        """Grad-CAM map of every finding phrase of `report` on `view`.

        Returns:
            One {"phrase", "biomarker", "negated", "index", "map"} per phrase ([g, g] array).
        """
        if model.explainer is None:
            model.explainer = PhraseGradCam(model.answerer.model, self.gradcam)
        explanation = explain_report(model.explainer, model.answerer.processor, format_prompt, view, name,
                                     self.report_question, report, self.vocabulary,
                                     include_negated=self.include_negated)
        return [{"phrase": p.text, "biomarker": p.biomarker, "negated": p.negated, "index": p.index, "map": m}
                for p, m in zip(explanation.phrases, explanation.maps)]

    def stage_tasks(self) -> list[Task]:
        """Staging and referral (multi-class tasks)."""
        return [t for t in self.tasks if t.kind != "biomarker"]

    def biomarker_tasks(self) -> list[Task]:
        """The present/absent biomarker tasks."""
        return [t for t in self.tasks if t.kind == "biomarker"]

    def class_name(self, task: str, class_id: str) -> str:
        """A class's clinical display name (`intermediate` -> `intermediate AMD`)."""
        outcomes = {"staging": self.knowledge.stages, "referral": self.knowledge.referral}.get(task, [])
        return next((o.name for o in outcomes if o.id == class_id), class_id)

    def biomarker_name(self, task: Task) -> str:
        """A biomarker task's clinical display name (`biomarker_srf` -> `subretinal fluid`)."""
        return self.knowledge.biomarkers[task.biomarker].name if task.biomarker else task.name

    @staticmethod
    def present_probability(result: OptionResult) -> float:
        """The probability of `present` in a biomarker task's result."""
        return result.probabilities[PRESENT]
