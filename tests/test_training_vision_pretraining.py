"""Supervised vision pretraining (models/training/vision_pretraining.py) on a tiny LeViT and real PNGs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from transformers import LevitModel
from support.configs import config_entry

from dataset.clinical import EVALUATION_BIOMARKERS, STAGES
from dataset.transforms import build_scan_transform
from dataset.scan_dataset import ScanDataset
from models.training.vision_pretraining import (PooledHead, maybe_pretrain_vision, positive_weights,
                                                pretrain_vision_tower, scan_labels, score_head)
from models.vision_encoder import build_vision_encoder

SIZE = 32


def _tower() -> tuple[LevitModel, int]:
    tower = config_entry("model/vision_encoder", "tiny_levit", image_size=SIZE, hidden_sizes=[16, 32],
                         depths=[1, 1], num_attention_heads=[1, 1], key_dim=[8, 8], feature_layer=-1)
    spec = build_vision_encoder(tower)
    torch.manual_seed(0)
    return LevitModel(spec.config), spec.feature_layer


def _table(tmp_path, n: int = 8) -> pd.DataFrame:
    """Scans whose brightness pattern gives away the stage, so a tower can fit them quickly."""
    rows = []
    for i in range(n):
        stage = STAGES[i % 2]
        pixels = np.full((SIZE, SIZE), 40 if i % 2 == 0 else 200, dtype=np.uint8)
        pixels[: SIZE // 2] = 120
        path = tmp_path / f"scan_{i}.png"
        Image.fromarray(pixels, mode="L").save(path)
        row = {"image_id": f"scan_{i}", "image_file": str(path), "stage": stage, "split": "train"}
        row.update({b: bool(i % 2) for b in EVALUATION_BIOMARKERS})
        rows.append(row)
    return pd.DataFrame(rows)


def _cfg(steps: int) -> dict:
    return {**config_entry("training", "default")["vision_pretraining"], "steps": steps, "batch_size": 8,
            "learning_rate": 1e-3, "warmup_steps": 0, "log_every": 1, "lr_schedule": "constant"}


def test_loss_falls_and_only_the_tower_is_updated(tmp_path):
    tower, layer = _tower()
    keys_before = set(tower.state_dict())
    before = {k: v.clone() for k, v in tower.state_dict().items()}
    summary = pretrain_vision_tower(tower, layer, _table(tmp_path), build_scan_transform(SIZE), _cfg(30),
                                    [0.5] * 3, [0.5] * 3, seed=0)
    losses = [loss for _, loss, _ in summary["history"]]
    assert summary["steps"] == 30 and len(losses) == 30
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    # The temporary head is not attached to the tower: same parameter names, changed values.
    assert set(tower.state_dict()) == keys_before
    assert any(not torch.equal(before[k], v) for k, v in tower.state_dict().items())


def test_held_out_scans_are_scored_by_the_trained_head(tmp_path):
    tower, layer = _tower()
    (tmp_path / "held_out").mkdir()
    held_out = ScanDataset(_table(tmp_path / "held_out", 6), build_scan_transform(SIZE))
    summary = pretrain_vision_tower(tower, layer, _table(tmp_path), build_scan_transform(SIZE), _cfg(60),
                                    [0.5] * 3, [0.5] * 3, seed=0, held_out=held_out)
    # The brightness decides the stage, so a head that learnt it stages unseen scans.
    assert summary["held_out"]["images"] == 6 and summary["held_out"]["stage_accuracy"] == 1.0
    # A head that calls the first stage and no finding for every scan: half the stages right
    # (they alternate), and balanced accuracy 0.5 on every finding.
    constant = PooledHead(tower.config.hidden_sizes[layer], len(STAGES), len(EVALUATION_BIOMARKERS))
    with torch.no_grad():
        constant.linear.weight.zero_()
        constant.linear.bias.fill_(-1.0)
        constant.linear.bias[0] = 1.0
    assert score_head(tower, layer, constant, held_out, [0.5] * 3, [0.5] * 3, batch_size=4) == {
        "images": 6, "stage_accuracy": 0.5, "biomarker_balanced_accuracy": 0.5,
        "per_biomarker": {name: 0.5 for name in EVALUATION_BIOMARKERS}}


def test_positive_weights_balance_rare_findings():
    # Four scans: the first finding in one of them, the second in three, the third in none.
    markers = np.array([[1, 1, 0], [0, 1, 0], [0, 1, 0], [0, 0, 0]], dtype=np.float32)
    assert positive_weights(markers, 0.0).tolist() == [1.0, 1.0, 1.0]
    assert positive_weights(markers, 1.0).tolist() == pytest.approx([3.0, 1 / 3, 1.0])
    assert positive_weights(markers, 0.5).tolist() == pytest.approx([3 ** 0.5, 3 ** -0.5, 1.0])


def test_scan_labels_reject_unknown_stage(tmp_path):
    table = _table(tmp_path, 2)
    table.loc[0, "stage"] = "not_a_stage"
    try:
        scan_labels(table)
    except ValueError as err:
        assert "scan_0" in str(err)
    else:
        raise AssertionError("an unknown stage must be rejected")


class _Processor:
    class image_processor:  # noqa: N801 - mimics LlavaProcessor.image_processor
        image_mean = [0.5, 0.5, 0.5]
        image_std = [0.5, 0.5, 0.5]


class _Model:
    def __init__(self, tower, layer):
        self.model = type("Inner", (), {"vision_tower": tower})()
        self.config = type("Config", (), {"vision_feature_layer": layer})()


def _pipeline_cfg(enabled: bool, kind: str = "new"):
    return OmegaConf.create({
        "seed": 0, "pretrained_models": {"name": "new", "kind": kind},
        "dataset": {"crop_size": SIZE, "image_height": SIZE, "image_width": SIZE, "augmentation": {}},
        "training": {"vision_pretraining": {**_cfg(3), "enabled": enabled}}})


def test_disabled_skipped_and_enabled_runs(tmp_path):
    tower, layer = _tower()
    before = {k: v.clone() for k, v in tower.state_dict().items()}
    model, table = _Model(tower, layer), _table(tmp_path)
    assert maybe_pretrain_vision(_pipeline_cfg(False), model, _Processor, table, resuming=False) is None
    assert maybe_pretrain_vision(_pipeline_cfg(True), model, _Processor, table, resuming=True) is None
    assert all(torch.equal(before[k], v) for k, v in tower.state_dict().items())
    summary = maybe_pretrain_vision(_pipeline_cfg(True), model, _Processor, table, resuming=False)
    assert summary is not None and summary["steps"] == 3 and summary["train_images"] == len(table)
