"""The phantom's shipped outputs: the README figure and the repository samples."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from PIL import Image

from dataset.annotations import load_annotations
from dataset.clinical import STAGES, load_knowledge
from dataset.phantom import make_dataset
from dataset.phantom.figure import plot_phantom_grid
from support.configs import phantom_cfg


def test_grid_figure_is_written_small(tmp_path):
    output = tmp_path / "grid.png"
    cfg = phantom_cfg(tmp_path, "figure.scans_per_stage=1", f"figure.output_file={output}",
                      config_name="plot_phantom_examples")
    assert plot_phantom_grid(cfg) == output
    with Image.open(output) as image:
        assert image.mode == "P" and image.height > image.width
    assert output.stat().st_size < 500_000


def test_samples_span_the_stages_and_load(tmp_path):
    processed, annotations = tmp_path / "processed", tmp_path / "samples"
    cfg = phantom_cfg(tmp_path, "samples_only=true", f"paths.processed_images_dir={processed}",
                      f"paths.sample_annotations_dir={annotations}")
    written = make_dataset(cfg)
    assert len(written["processed_images"]) == 8
    stages_shown = {Path(path).stem.split("_", 2)[2] for path in written["processed_images"]}
    assert len(list(processed.glob("*.png"))) == 8 and not list(processed.rglob("*.npz"))
    assert stages_shown == set(STAGES)
    table = load_annotations(annotations / "annotations.csv")
    assert sorted(table["stage"]) == sorted(STAGES)
    for _, row in table.iterrows():
        assert load_knowledge().stage(row["stage"]).name.lower() in row["report"].lower()
    raw = pd.read_csv(annotations / "annotations.csv", dtype=str)
    assert "mask_path" not in raw.columns and raw["image_path"].str.startswith("images/").all()
