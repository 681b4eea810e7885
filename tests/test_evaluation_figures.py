"""Figures: confusion matrices, F1 bars with CIs and the biomarker radar, from scored results."""

import numpy as np
import pandas as pd
from PIL import Image

from evaluation.figures import write_figures
from evaluation.scoring import score_all
from evaluation.tasks import build_tasks


def _rows(tasks, models, n=24, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for task in tasks:
        labels = rng.choice(task.classes, size=n)
        for k, model in enumerate(models):
            for i, label in enumerate(labels):
                guess = label if rng.random() < 0.5 + 0.2 * k else rng.choice([*task.classes, None])
                rows.append({"model": model, "task": task.name, "image_id": f"i{i}", "patient_id": f"p{i // 2}",
                             "label": label, "prediction": guess})
    return pd.DataFrame(rows)


def test_figures_for_biomarkers_and_staging(tmp_path):
    tasks = build_tasks("biomarkers", {"question": "Is there {biomarker}?"}, ["drusen", "srf", "irf"])
    tasks += build_tasks("staging", {"question": "Stage?"})
    results, _ = score_all(_rows(tasks, ["model_a", "model_b"]), tasks, n_resamples=30)
    written = write_figures(tmp_path, results)
    names = {p.name for p in written}
    assert {"f1_bars.png", "biomarker_radar.png", "confusion_staging_model_a.png"} <= names
    assert len(written) == 2 * 4 + 2
    for path in written:
        with Image.open(path) as image:
            assert image.size[0] > 200 and image.size[1] > 200


def test_no_radar_without_biomarkers(tmp_path):
    tasks = build_tasks("referral", {"question": "Referral?"})
    results, _ = score_all(_rows(tasks, ["m"]), tasks, n_resamples=20)
    names = {p.name for p in write_figures(tmp_path, results)}
    assert names == {"confusion_referral_m.png", "f1_bars.png"}
