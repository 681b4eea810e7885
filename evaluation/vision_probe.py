"""Linear probes of a VLM's image features: do they carry a label at all?

When a model answers a closed-ended task no better than the majority class, the first thing to
know is whether the image features it hands the language model encode the answer. This fits a
logistic regression per label on the pooled image features (mean and max over the image tokens,
after the adapter) of the training split and scores it on the test split, next to the majority
class. A probe far above the majority class with a model answer at the majority rate points at
the language side (too little training on the question), not the vision tower.

`run_vision_probe(cfg)` is what `run/vision_probe.py` calls; it writes `vision_probe.csv` (one row
per model and label) into the run folder.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
from sklearn.preprocessing import StandardScaler

from dataset.annotations import load_annotations
from dataset.runtime import prepare_run
from dataset.splits import select_rows
from evaluation.data import load_model_images
from models.prompting import to_rgb
from models.registry import model_names, open_model

logger = logging.getLogger(__name__)
PROBE_FILE = "vision_probe.csv"


@torch.no_grad()
def pooled_image_features(model, processor, images: Sequence[Image.Image],
                          batch_size: int = 64) -> np.ndarray:
    """Mean- and max-pooled projected image tokens of each image: [num_images, 2 * hidden]."""
    model.eval()
    device = next(model.parameters()).device
    chunks = []
    for start in range(0, len(images), batch_size):
        batch = to_rgb(images[start:start + batch_size])
        pixels = processor.image_processor(batch, return_tensors="pt")["pixel_values"].to(device, model.dtype)
        features = model.model.get_image_features(pixel_values=pixels)
        features = getattr(features, "pooler_output", features)
        if isinstance(features, (list, tuple)):
            features = torch.stack(list(features))
        tokens = features.reshape(len(batch), -1, features.shape[-1]).float()  # [B, tokens, hidden]
        chunks.append(torch.cat([tokens.mean(dim=1), tokens.max(dim=1).values], dim=1).cpu().numpy())
    return np.concatenate(chunks)


def probe_labels(train_x: np.ndarray, train_labels: Mapping[str, Sequence], test_x: np.ndarray,
                 test_labels: Mapping[str, Sequence], regularisation: float = 0.1,
                 seed: int = 0) -> pd.DataFrame:
    """Fit one logistic regression per label on standardised features; score it on the test rows.

    Args:
        train_x, test_x: features [n, d].
        train_labels, test_labels: label name -> one value per row.
        regularisation: inverse L2 strength (scikit-learn's `C`).
        seed: solver seed.

    Returns:
        One row per label: probe accuracy, balanced accuracy and macro-F1, and the same for the
        training split's majority class.
    """
    scaler = StandardScaler().fit(train_x)
    train_x, test_x = scaler.transform(train_x), scaler.transform(test_x)
    rows = []
    for name, train_y in train_labels.items():
        train_y, test_y = np.asarray(train_y), np.asarray(test_labels[name])
        majority = pd.Series(train_y).mode()[0]
        if len(np.unique(train_y)) < 2:
            predicted = np.full(len(test_y), majority)
        else:
            classifier = LogisticRegression(C=regularisation, max_iter=2000, random_state=seed)
            predicted = classifier.fit(train_x, train_y).predict(test_x)
        baseline = np.full(len(test_y), majority)
        rows.append({
            "label": name, "n_train": len(train_y), "n_test": len(test_y),
            "accuracy": accuracy_score(test_y, predicted),
            "majority_accuracy": accuracy_score(test_y, baseline),
            "balanced_accuracy": balanced_accuracy_score(test_y, predicted),
            "macro_f1": f1_score(test_y, predicted, average="macro", zero_division=0),
            "majority_macro_f1": f1_score(test_y, baseline, average="macro", zero_division=0),
        })
    return pd.DataFrame(rows)


def annotation_labels(rows: pd.DataFrame) -> dict[str, list]:
    """Stage, referral and the ten evaluation biomarkers (present/absent) of annotation rows."""
    from dataset.clinical import EVALUATION_BIOMARKERS, is_present

    labels = {"stage": rows["stage"].astype(str).tolist(), "referral": rows["referral"].astype(str).tolist()}
    for biomarker in EVALUATION_BIOMARKERS:
        labels[biomarker] = [is_present({biomarker: v}, biomarker) for v in rows[biomarker]]
    return labels


def run_vision_probe(cfg: DictConfig) -> pd.DataFrame:
    """Probe each registry model's image features on the annotation table's train and test splits.

    Args:
        cfg: the composed `vision_probe` config (`dataset`, `pretrained_models` or `models`,
            `probe.max_train`, `probe.batch_size`, `probe.regularisation`, `probe.device`).

    Returns:
        One row per model and label (`probe_labels`' columns after `model`); also written to
        `vision_probe.csv` in the run folder.

    Raises:
        dataset.errors.ConfigError: a registry entry without local weights (an API endpoint, `new`).
    """
    run_dir = prepare_run(cfg)
    probe = cfg.probe
    table = load_annotations(cfg.dataset.annotations_file, cfg.dataset.images_dir)
    train, test = select_rows(table, "train"), select_rows(table, "test")
    if probe.max_train:
        train = train.head(int(probe.max_train))
    images = [load_model_images(rows, cfg.dataset) for rows in (train, test)]
    results = []
    for name in model_names(cfg):
        model, processor = open_model(name, cfg, device=probe.device, needs="the vision probe")
        features = [pooled_image_features(model, processor, split_images, batch_size=int(probe.batch_size))
                    for split_images in images]
        result = probe_labels(features[0], annotation_labels(train), features[1], annotation_labels(test),
                              regularisation=float(probe.regularisation), seed=int(cfg.seed))
        results.append(result.assign(model=name)[["model", *result.columns]])
        del model, processor  # one model in memory at a time
    result = pd.concat(results, ignore_index=True)
    result.to_csv(run_dir / PROBE_FILE, index=False)
    logger.info("linear probes of the image features (probe vs majority class):\n%s",
                result.to_string(index=False, float_format="%.3f"))
    return result
