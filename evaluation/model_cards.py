"""After a closed-ended evaluation: refresh the model card of every evaluated local model.

Each evaluated registry model that is a local folder gets, per task, its metrics with confidence
intervals, the majority-class baseline, the answer mode and the fitted option biases written into
its `model_card.json` and re-rendered `README.md` (`models.model_card`). A card that cannot be
written (a read-only model folder, say) is logged and skipped: the evaluation's own outputs are
already on disk and stay the record.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from evaluation.scoring import MAJORITY
from models.model_card import record_evaluation
from models.registry import load_registry_entry, resolve_model

logger = logging.getLogger(__name__)


def evaluation_entries(model: str, results: Sequence[Mapping[str, Any]], extra: Mapping[str, Any],
                       run_dir: str | Path, option_score: str | None = None) -> dict[str, dict[str, Any]]:
    """Task -> card entry for one model, from the scored results of an evaluation run.

    Args:
        model: the registry name.
        results: `score_and_write(...)["results"]` (every model and task, the majority baseline too).
        extra: the run facts written into metrics.json (`answer_mode`, `split`, `calibration`).
        run_dir: the evaluation's run folder.
        option_score: how options were scored (`sum` or `mean`); biases only apply on that scale.

    Returns:
        One entry per task the model was scored on.
    """
    majority = {r["task"]: r["metrics"] for r in results if r["model"] == MAJORITY}
    # Calibrated answers are scored as a second entry, `<model>+calibrated` (evaluation.closed_ended).
    calibrated_metrics = {r["task"]: r["metrics"] for r in results if r["model"] == f"{model}+calibrated"}
    calibration = extra.get("calibration") or {}
    biases = (calibration.get("option_biases") or {}).get(model, {})
    entries = {}
    for result in results:
        if result["model"] != model:
            continue
        task = result["task"]
        entries[task] = {"metrics": result["metrics"], "n_images": result.get("n_images"),
                         "n_patients": result.get("n_patients"), "split": extra.get("split"),
                         "answer_mode": extra.get("answer_mode"), "run_dir": str(run_dir),
                         "majority_class": majority.get(task),
                         "calibrated_metrics": calibrated_metrics.get(task),
                         "option_score": option_score if extra.get("answer_mode") == "likelihood" else None,
                         "option_biases": biases.get(task),
                         "calibration_split": calibration.get("split") if biases.get(task) else None,
                         "calibration_objective": calibration.get("objective") if biases.get(task) else None}
    return entries


def refresh_model_cards(cfg: DictConfig, names: Sequence[str], output: Mapping[str, Any],
                        extra: Mapping[str, Any]) -> list[Path]:
    """Write the run's metrics into the card of every evaluated local model.

    Args:
        cfg: the composed closed-ended evaluation config (registry lookup).
        names: the evaluated registry names.
        output: what `score_and_write` returned (`run_dir`, `results`).
        extra: the run facts written into metrics.json.

    Returns:
        The cards written.
    """
    written = []
    for name in names:
        try:
            resolved = resolve_model(load_registry_entry(name, cfg))
            if resolved.kind != "local":
                continue
            option_score = (cfg.evaluation.get("generation") or {}).get("option_score")
            entries = evaluation_entries(name, output["results"], extra, output["run_dir"],
                                         str(option_score) if option_score else None)
            for task, entry in entries.items():
                written.append(record_evaluation(resolved.path, task, entry))
        except (OSError, ValueError) as err:  # the evaluation itself succeeded; keep its outputs
            logger.warning("model card of %s not refreshed: %s", name, err)
    return sorted(set(written))
