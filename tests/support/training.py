"""Tiny curriculum training for tests: a contract-format table, scans and records.jsonl stores,
the overrides of a tiny run, and the trained model pair the web-demo tests use.

The answers depend on a visible image property (a bright bar drawn for drusen-positive images), so
a model can actually learn them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from dataset.clinical import BIOMARKERS
from dataset.qa_records import QARecord, append_records
from support.configs import ROOT, compose_overrides
from support.tiny_models import tiny_vlm_overrides

PART_1 = "tabular_annotate_rules"
PART_2 = ("1_advanced_biomarkers_guidelines", "2_specific_qa")


def write_training_data(root: Path, images: int = 24) -> Path:
    """Write `root/data/annotations.csv` + scans and `root/curriculum/<store>/records.jsonl`.

    Returns:
        The annotation table path.
    """
    data = root / "data"
    records, rows = [], []
    splits = ["train", "train", "validation", "test"]
    for i in range(images):
        positive = i % 2 == 1
        rng = np.random.default_rng(i)
        pixels = rng.integers(0, 60, size=(208, 256), dtype=np.uint8)
        if positive:
            pixels[90:110, 40:216] = 230  # a bright band the tower can see
        path = data / "images" / f"scan{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels, mode="L").save(path)
        patient = i // 2
        row = {"image_id": f"scan{i:03d}", "image_path": f"images/scan{i:03d}.png", "patient_id": f"p{patient}",
               "eye": "left", "split": splits[patient % 4], "report": "Drusen seen." if positive else "Normal retina."}
        row.update({b: 0 for b in BIOMARKERS})
        if positive:
            row.update({"drusen": 1, "drusen_size": "large", "rpe_elevation": 1})
        rows.append(row)
        answer = "Yes, drusen are present." if positive else "No, there are no drusen."
        for store in (PART_1, *PART_2):
            for k, question in enumerate(["Are there drusen?", "Do you see drusen in this scan?"]):
                records.append((store, QARecord(QARecord.make_id(row["image_id"], store, k), row["image_id"], store,
                                                question, answer, "rules", "rules", "v1")))
    table = data / "annotations.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    for store in (PART_1, *PART_2):
        append_records(root / "curriculum" / store / "records.jsonl", [r for s, r in records if s == store])
    return table


def training_overrides(root: Path, extra: list[str] | None = None) -> list[str]:
    """Hydra overrides pointing a tiny run (the tiny VLM, `training=debug`) at `root`, whose data
    `write_training_data` wrote."""
    return [f"paths.root_dir={ROOT}", f"paths.output_dir={root}/outputs",
            f"paths.data_dir={root}/data", f"paths.curriculum_dir={root}/curriculum", f"run_dir={root}/run",
            "training=debug", *tiny_vlm_overrides(), *(extra or [])]


def part_2_overrides() -> list[str]:
    """Point the part-2 task at the two stores the fixture writes."""
    return ["dataset/task=curriculum_part_2_advanced_retinal_specialism", "~dataset.task.curricula",
            f"+dataset.task.curricula={{{PART_2[0]}: 1.0, {PART_2[1]}: 0.5}}"]


def web_demo_overrides(root: Path) -> list[str]:
    """Hydra overrides that point the web demo (or `run/demos/inference.py`) at the trained pair."""
    return [f"paths.root_dir={ROOT}", f"paths.output_dir={root}/outputs", f"paths.data_dir={root}/data",
            f"paths.curriculum_dir={root}/curriculum", f"run_dir={root}/web_run"]


def train_demo_models(root: Path, steps: int = 150) -> dict:
    """Train `retinavlm_base_192px` and `specialist_v5_192px` under `root` and evaluate the specialist.

    Part 1 and part 2 of the curriculum on the training scans, then a calibrated closed-ended
    staging evaluation of the specialist, so its model card carries option biases. About a minute
    on 2 cores.

    Returns:
        {"table": annotations.csv, "models": model folder, "evaluation": the evaluation's output}.
    """
    from evaluation.closed_ended import run_closed_ended_evaluation
    from models.training import run_vision_language_pretraining

    table = write_training_data(root)
    longer = [f"training.max_steps={steps}", "training.eval_every=1000", "training.checkpoint_every=1000"]
    run_vision_language_pretraining(compose_overrides("vision_language_pretraining", training_overrides(root, longer)))
    run_vision_language_pretraining(compose_overrides("vision_language_pretraining", training_overrides(
        root, ["pretrained_models=retinavlm_base_192px", f"run_dir={root / 'run2'}", *longer, *part_2_overrides()])))
    evaluation = run_closed_ended_evaluation(compose_overrides("closed_ended_evaluation", [
        *web_demo_overrides(root), f"run_dir={root / 'evaluation'}", "models=[specialist_v5_192px]",
        "evaluation.statistics.n_resamples=20", "evaluation.figures=false"]))
    return {"table": table, "models": root / "outputs" / "models", "evaluation": evaluation}
