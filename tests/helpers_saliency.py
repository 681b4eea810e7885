"""Tiny VLMs, scans, masks and tables for the saliency tests (built with the project's own
`models.build_vlm`, so the tests exercise the same model the toolkit trains)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from dataset.clinical import BIOMARKERS
from models import build_vlm

REPORTS = [
    "Large drusen are seen nasally with subretinal fluid temporally. No intraretinal fluid.",
    "Hyperreflective foci and subretinal hyperreflective material are present; no subretinal fluid.",
    "A drusenoid PED with RPE elevation. Intraretinal fluid is absent.",
]

TINY_MODEL_CFG = {
    "vision_encoder": {"kind": "levit", "image_size": 192, "hidden_sizes": [16, 32], "depths": [1, 1],
                       "num_attention_heads": [1, 2], "key_dim": [8, 8], "feature_layer": -1},
    "adapter": {"name": "mlp2x_gelu"},
    "text_decoder": {"kind": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "num_key_value_heads": 2, "max_position_embeddings": 512,
                     "tokenizer": {"vocab_size": 400, "min_frequency": 1}},
}


def tiny_vlm(seed: int = 0):
    """A tiny random LeViT-in-LLaVA model (6x6 = 36 image tokens at 192 px) and its processor.

    A freshly initialised LeViT's features nearly vanish (tiny conv weights, batch-norm running
    statistics of 1), so every image token comes out the same and any map is flat. Calibrating
    the batch-norm statistics on a few scans (forward passes only, as the first steps of training
    would) gives spatially varying features without training.
    """
    torch.manual_seed(seed)
    model, processor = build_vlm(TINY_MODEL_CFG, REPORTS * 4)
    scans = [view_of(lesion_scan(100 + i)[0]) for i in range(8)]
    pixels = processor.image_processor(images=[s.convert("RGB") for s in scans], return_tensors="pt")["pixel_values"]
    tower = model.model.vision_tower
    norms = [m for m in tower.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the calibration batch
    tower.train()
    with torch.no_grad():
        tower(pixels)
    for norm in norms:
        norm.momentum = 0.1
    return model.eval(), processor


def view_of(scan: Image.Image, crop: int = 192) -> Image.Image:
    """The model's view of a 208x256 scan: its centre crop."""
    top, left = (scan.height - crop) // 2, (scan.width - crop) // 2
    return scan.crop((left, top, left + crop, top + crop))


def lesion_scan(seed: int, size: tuple[int, int] = (208, 256)) -> tuple[Image.Image, np.ndarray]:
    """A noisy scan with one bright rectangle and that rectangle's boolean mask."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(20, 90, size=size).astype(np.uint8)
    top, left = int(rng.integers(40, size[0] - 60)), int(rng.integers(40, size[1] - 70))
    mask = np.zeros(size, bool)
    mask[top:top + 20, left:left + 30] = True
    pixels[mask] = 230
    return Image.fromarray(pixels, mode="L"), mask


def write_masked_table(folder: Path, rows: int = 3) -> Path:
    """An annotation table of `rows` test-split scans with reports and lesion masks (`mask_path`)."""
    records = []
    for i in range(rows):
        image, mask = lesion_scan(i)
        image.save(folder / f"scan{i}.png")
        # Every finding of the report gets the same lesion; an empty mask for one biomarker shows
        # the "no lesion in view" path.
        findings = {"drusen": mask, "srf": mask, "hrf": mask, "shrm": mask, "ped": mask,
                    "rpe_elevation": np.zeros_like(mask)}
        np.savez(folder / f"scan{i}_masks.npz", **findings)
        record = {"image_id": f"scan{i}", "image_path": f"scan{i}.png", "patient_id": f"p{i}", "eye": "left",
                  "split": "test", "report": REPORTS[i % len(REPORTS)], "mask_path": f"scan{i}_masks.npz"}
        record.update({b: int(b in findings and b != "rpe_elevation") for b in BIOMARKERS})
        records.append(record)
    table = folder / "annotations.csv"
    pd.DataFrame(records).to_csv(table, index=False)
    return table
