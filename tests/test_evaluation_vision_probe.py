"""Linear probes of image features: a label the images encode is recovered, a shuffled one is not;
the entry function probes registry models by name and writes its table into the run folder."""

import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dataset.clinical import EVALUATION_BIOMARKERS
from dataset.errors import ConfigError
from evaluation.vision_probe import (PROBE_FILE, annotation_labels, pooled_image_features, probe_labels,
                                     run_vision_probe)
from support.configs import compose_config
from support.tables import write_tiny_dataset
from support.tiny_models import build_tiny_vlm


def _scans(brightness):
    return [Image.fromarray(np.full((192, 192), int(b), dtype=np.uint8)) for b in brightness]


def test_probe_recovers_what_the_features_encode_and_not_a_shuffled_label():
    model, processor = build_tiny_vlm()
    rng = np.random.default_rng(0)
    bright = rng.integers(0, 2, 160)  # the label: dark (0) or bright (1) scan
    images = _scans(40 + 150 * bright + rng.integers(0, 20, 160))
    features = pooled_image_features(model, processor, images, batch_size=32)
    assert features.shape == (160, 2 * model.config.text_config.hidden_size)
    assert np.isfinite(features).all()
    shuffled = rng.permutation(bright)
    train, test = slice(0, 100), slice(100, 160)
    table = probe_labels(features[train], {"bright": bright[train], "shuffled": shuffled[train]},
                         features[test], {"bright": bright[test], "shuffled": shuffled[test]})
    by_label = table.set_index("label")
    assert by_label.loc["bright", "accuracy"] >= 0.95
    assert by_label.loc["bright", "accuracy"] > by_label.loc["bright", "majority_accuracy"] + 0.3
    assert by_label.loc["shuffled", "balanced_accuracy"] < 0.75
    train_majority = pd.Series(shuffled[train]).mode()[0]
    assert by_label.loc["shuffled", "majority_accuracy"] == np.mean(shuffled[test] == train_majority)


def test_single_class_labels_fall_back_to_the_majority_and_annotations_map_to_present():
    x = np.random.default_rng(1).normal(size=(20, 4))
    table = probe_labels(x[:10], {"constant": [1] * 10}, x[10:], {"constant": [1] * 9 + [0]})
    assert table.loc[0, "accuracy"] == table.loc[0, "majority_accuracy"] == 0.9
    rows = pd.DataFrame({"stage": ["healthy", "early"], "referral": ["not_seen", "routine"],
                         **{b: [0, 1] for b in EVALUATION_BIOMARKERS}})
    labels = annotation_labels(rows)
    assert labels["stage"] == ["healthy", "early"] and labels["srf"] == [False, True]


def test_entry_probes_registry_models_by_name_into_the_run_folder(tmp_path, tiny_vlm_dir):
    table = write_tiny_dataset(tmp_path / "data")
    for name in ("specialist_v5_192px", "retinavlm_base_192px"):
        shutil.copytree(tiny_vlm_dir, tmp_path / "models" / name)
    cfg = compose_config("vision_probe", tmp_path, [
        f"paths.data_dir={table.parent}", f"paths.model_dir={tmp_path / 'models'}", "probe.max_train=4",
        "models=[specialist_v5_192px,retinavlm_base_192px]"])
    result = run_vision_probe(cfg)
    saved = pd.read_csv(tmp_path / "run" / PROBE_FILE)
    assert list(saved.columns[:2]) == ["model", "label"] and len(saved) == len(result) == 2 * 12
    assert (saved["n_train"] == 4).all() and (saved["n_test"] == 6).all()
    # The same weights under two names: the same probe.
    by_model = [group.drop(columns="model").reset_index(drop=True) for _, group in saved.groupby("model")]
    pd.testing.assert_frame_equal(*by_model)


def test_entry_refuses_a_model_without_weights(tmp_path):
    table = write_tiny_dataset(tmp_path / "data")
    cfg = compose_config("vision_probe", tmp_path, [f"paths.data_dir={table.parent}",
                                                    "pretrained_models=gpt-4o"])
    with pytest.raises(ConfigError, match="the vision probe needs a local model"):
        run_vision_probe(cfg)
