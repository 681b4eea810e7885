"""Model cards: a `README.md` in the Hugging Face model-card convention for every trained model folder.

The card is rendered from the facts in `model_card.json` beside it: training writes the data and
curriculum facts (`write_training_card`), every closed-ended evaluation adds its metrics and option
biases per task (`record_evaluation`) and re-renders the card. Keeping the facts machine-readable
lets later stages (the part-2 card lists part 1's stage too) and consumers (the web demo reads the
calibration biases) use them without parsing Markdown. Neither file is read by transformers, so
stock `AutoModelForImageTextToText.from_pretrained(folder)` is unaffected.

The YAML header is written by `huggingface_hub.ModelCardData`, the library the Hub itself uses.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCardData

logger = logging.getLogger(__name__)

CARD_FILE = "README.md"
CARD_DATA_FILE = "model_card.json"
DEFAULT_LICENSE = "other"
TAGS = ["vision-language-model", "llava", "medical-imaging", "ophthalmology", "optical-coherence-tomography",
        "age-related-macular-degeneration", "research-only", "specialist-vlms"]
# Around the evaluation section written into a card this toolkit did not write.
EVALUATION_MARKERS = ("<!-- specialist-vlms evaluation: start -->",
                      "<!-- specialist-vlms evaluation: end -->")
DISCLAIMER = ("**Research use only.** This model is a research prototype. It is not a medical device, has "
              "not been clinically validated, and must not be used to diagnose, stage, triage or treat any "
              "patient.")
# The card of a model converted from someone else's release (`imported` facts, models.retinavlm_card).
IMPORTED_DISCLAIMER = ("**Research use only.** This model is a research prototype released by its authors "
                       "and converted with the SpecialistVLMs toolkit. It is not a medical device and must "
                       "not be used to diagnose, stage, triage or treat any patient.")


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _atomic_write(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder, so a reader never sees half a card."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_card_data(model_dir: str | Path) -> dict[str, Any]:
    """The card facts of a model folder (`model_card.json`); an empty dict when there are none.

    Raises:
        ValueError: the file exists but is not valid JSON (the message names it).
    """
    path = Path(model_dir) / CARD_DATA_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); delete it and retrain or re-evaluate the "
                         "model") from err


def describe_data(annotations_file: str | Path, table) -> dict[str, Any]:
    """What a model was trained on: the phantom or the user's annotation table, with image counts.

    Args:
        annotations_file: the annotation table the run read.
        table: the loaded table (pandas), with `split` and `patient_id` columns when present.

    Returns:
        `kind` (`phantom` or `annotations`), `annotations_file`, `images`, `patients`, `images_per_split`.
    """
    path = Path(str(annotations_file))
    summary_file = path.parent / "summary.json"
    kind, seed = "annotations", None
    if summary_file.is_file():  # the phantom writer leaves its summary beside the table
        try:
            summary = json.loads(summary_file.read_text())
            if {"split_patients", "num_eyes", "stages"} <= set(summary):
                kind, seed = "phantom", summary.get("seed")
        except (json.JSONDecodeError, OSError):
            pass
    splits = table["split"].value_counts().to_dict() if "split" in table.columns else {}
    return {"kind": kind, "phantom_seed": seed, "annotations_file": str(path), "images": int(len(table)),
            "patients": int(table["patient_id"].nunique()) if "patient_id" in table.columns else None,
            "images_per_split": {str(k): int(v) for k, v in sorted(splits.items())}}


def write_training_card(model_dir: str | Path, cfg: Mapping[str, Any], table, summary: Mapping[str, Any],
                        examples_per_curriculum: Mapping[str, int]) -> Path:
    """Record a finished training stage in the model folder and (re)write its card.

    The starting model's card facts (e.g. part 1's, for part 2) are carried over as earlier stages;
    earlier evaluations are dropped, since they described other weights.

    Args:
        model_dir: the saved model folder.
        cfg: the composed training config (`pretrained_models`, `dataset`, `training`, `model`, `seed`).
        table: the annotation table the run trained on.
        summary: the training summary (`steps`, `wall_time_s`, `train_examples`, parameter counts, ...).
        examples_per_curriculum: curriculum store -> training examples used from it.

    Returns:
        The card path (`<model_dir>/README.md`).
    """
    model_dir = Path(model_dir)
    task, training = cfg["dataset"]["task"], cfg["training"]
    start = cfg["pretrained_models"]
    parent: dict[str, Any] = {}
    if start.get("kind") == "local" and start.get("path"):
        try:
            parent = load_card_data(start["path"])
        except ValueError as err:
            logger.warning("starting model's card facts are unreadable, not carried over: %s", err)
    vision = summary.get("vision_pretraining") or {}
    stage = {
        "task": str(task["name"]), "started_from": str(start["name"]), "finished": _now(),
        "curricula": {str(name): {"weight": float(task["curricula"][name]), "examples": int(count)}
                      for name, count in sorted(examples_per_curriculum.items())},
        "steps": int(summary.get("steps", 0)), "batch_size": int(training["batch_size"]),
        "learning_rate": float(training["learning_rate"]),
        "policy": str(training["policy"]["name"]),
        "train_examples": int(summary.get("train_examples", 0)), "wall_time_s": summary.get("wall_time_s"),
        "vision_pretraining_steps": int(vision.get("steps", 0) or 0) if isinstance(vision, Mapping) else 0,
        "seed": int(cfg["seed"]),
    }
    model_cfg = cfg["model"]
    imported = parent.get("imported")  # weights converted from a release: their origin stays on the card
    parts = ("vision_encoder", "adapter", "text_decoder")
    components = {part: _component_name(model_cfg, part) for part in parts}
    if imported:  # the model config did not build these weights; the import's names describe them
        components = {part: (parent.get("architecture") or {}).get(part, "") for part in parts}
    data = {
        "name": model_dir.name,
        # `model_card.license` is optional (no shipped config sets it): `+model_card.license=...` on a run.
        "license": str((cfg.get("model_card") or {}).get("license", DEFAULT_LICENSE)),
        "architecture": {**components, "total_parameters": summary.get("total_parameters"),
                         "trainable_parameters": summary.get("trainable_parameters")},
        "data": describe_data(cfg["dataset"]["annotations_file"], table),
        "stages": [*parent.get("stages", []), stage],
        "evaluations": {},
        **({"imported": imported} if imported else {}),
    }
    return save_card(model_dir, data)


def _component_name(model_cfg: Mapping[str, Any], part: str) -> str:
    node = model_cfg.get(part) or {}
    return str(node.get("name") or node.get("kind") or "")


def record_evaluation(model_dir: str | Path, task: str, evaluation: Mapping[str, Any]) -> Path:
    """Store one closed-ended task's latest evaluation in the model folder and re-render the card.

    Args:
        model_dir: the evaluated model folder.
        task: task name (`staging`, `referral`, `biomarker_srf`, ...); a newer evaluation of the same
            task replaces the older one.
        evaluation: `metrics` (name -> {value, ci_low, ci_high}), `n_images`, `n_patients`, `split`,
            `answer_mode`, `run_dir`, optional `option_biases` (class -> bias), `calibration_split`,
            `majority_class` metrics.

    Returns:
        The card path.
    """
    data = load_card_data(model_dir) or {"name": Path(model_dir).name}
    data.setdefault("evaluations", {})[task] = {"evaluated": _now(), **dict(evaluation)}
    return save_card(model_dir, data)


def calibration_biases(model_dir: str | Path, option_score: str | None = None) -> dict[str, dict[str, float]]:
    """Task -> class -> option bias from the model's latest closed-ended evaluations (empty if none).

    Args:
        model_dir: the model folder.
        option_score: keep only biases fitted on option scores of this kind (`sum` or `mean`; biases
            are offsets on that scale); None keeps all. Entries that do not record it are kept.
    """
    try:
        evaluations = load_card_data(model_dir).get("evaluations", {})
    except ValueError as err:
        logger.warning("%s", err)
        return {}
    return {task: {str(k): float(v) for k, v in e["option_biases"].items()}
            for task, e in evaluations.items() if e.get("option_biases")
            and (option_score is None or e.get("option_score") in (None, option_score))}


def save_card(model_dir: str | Path, data: Mapping[str, Any]) -> Path:
    """Write `model_card.json` and the rendered `README.md` into the model folder.

    A folder this toolkit neither trained nor imported (no training stages or `imported` facts: a Hub
    folder) keeps the card it came with: only the evaluation section between `EVALUATION_MARKERS` is
    written into it, replacing the previous one.

    Returns:
        The card path.
    """
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write(model_dir / CARD_DATA_FILE, json.dumps(data, indent=2, sort_keys=True) + "\n")
    card = model_dir / CARD_FILE
    if not data.get("stages") and not data.get("imported") and card.is_file():
        text = with_evaluation_section(card.read_text(encoding="utf-8"), data)
    else:
        text = render_card(data)
    _atomic_write(card, text)
    logger.info("model card written to %s", card)
    return card


def with_evaluation_section(card: str, data: Mapping[str, Any]) -> str:
    """`card` with its SpecialistVLMs evaluation section (between `EVALUATION_MARKERS`) replaced, or
    appended when it has none; the rest of the card is kept as written."""
    from models.model_card_text import marked_evaluation_section

    before, found, rest = card.partition(EVALUATION_MARKERS[0])
    after = rest.partition(EVALUATION_MARKERS[1])[2] if found else ""
    section = marked_evaluation_section(data, DISCLAIMER, EVALUATION_MARKERS)
    return before.rstrip("\n") + "\n\n" + section + "\n" + after.lstrip("\n")


def card_header(data: Mapping[str, Any]) -> str:
    """The YAML front matter: pipeline tag, library, license, tags and (converted models) base model."""
    phantom = (data.get("data") or {}).get("kind") == "phantom"
    imported = data.get("imported") or {}
    tags = TAGS + (["synthetic-data"] if phantom else []) + (["converted"] if imported else [])
    # A converted model's tower needs this project's `models` package, so stock transformers is not
    # named as its library; its license points at the release's own terms.
    metadata = ModelCardData(license=str(data.get("license", DEFAULT_LICENSE)),
                             library_name=None if imported else "transformers",
                             pipeline_tag="image-text-to-text", base_model=imported.get("base_model"),
                             license_name=imported.get("license_name"), license_link=imported.get("license_link"),
                             tags=tags)
    return f"---\n{metadata.to_yaml()}\n---\n"


def render_card(data: Mapping[str, Any]) -> str:
    """The whole card (front matter and Markdown body) from the card facts."""
    from models.model_card_text import render_body

    disclaimer = IMPORTED_DISCLAIMER if data.get("imported") else DISCLAIMER
    return card_header(data) + render_body(data, disclaimer, EVALUATION_MARKERS)
