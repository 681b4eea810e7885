"""Turning the engine's answers into what the page shows: text, tables, overlays and the JSON file."""

from __future__ import annotations

import base64
import io
import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on a server
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from evaluation.web_demo.engine import DemoEngine, OptionResult  # noqa: E402
from models.model_card import DISCLAIMER  # noqa: E402
from saliency.localisation import upsample_map  # noqa: E402
from saliency.overlays import OverlayStyle, draw_overlay  # noqa: E402

RESULTS_FILE = "web_demo_results.json"
OPTION_COLUMNS = ["model", "scan", "task", "option", "probability", "chosen"]


def reports_text(names: Sequence[str], reports: Sequence[str]) -> str:
    """One block per scan: `[name]` then its report."""
    return "\n\n".join(f"[{n}]\n{r}" for n, r in zip(names, reports))


def summary_text(engine: DemoEngine, names: Sequence[str], options: Sequence[Sequence[OptionResult]]) -> str:
    """One line per scan: the most probable stage and referral with their probabilities."""
    lines = []
    for name, results in zip(names, options):
        parts = [f"{r.task}: {engine.class_name(r.task, r.prediction)} ({r.probabilities[r.prediction]:.0%})"
                 for r in results]
        calibrated = "calibrated" if any(r.calibrated for r in results) else "uncalibrated"
        lines.append(f"{name} - " + " | ".join(parts) + f" [{calibrated}]")
    return "\n".join(lines)


def option_rows(engine: DemoEngine, model: str, names: Sequence[str],
                options: Sequence[Sequence[OptionResult]]) -> list[list[Any]]:
    """Long table rows: one per model, scan, task and option."""
    return [[model, name, r.task, engine.class_name(r.task, c), round(p, 4),
             "<-" if c == r.prediction else ""]
            for name, results in zip(names, options) for r in results for c, p in r.probabilities.items()]


def biomarker_frame(engine: DemoEngine,
                    rows: Sequence[tuple[str, str, Sequence[OptionResult]]]) -> pd.DataFrame:
    """Probability that each biomarker is present: one row per (model, scan), one column per biomarker."""
    tasks = engine.biomarker_tasks()
    columns = ["model", "scan"] + [engine.biomarker_name(t) for t in tasks]
    data = [[model, scan] + [round(DemoEngine.present_probability(r), 4) for r in results]
            for model, scan, results in rows]
    return pd.DataFrame(data, columns=columns)


def overlay_image(view: Image.Image, grid_map: np.ndarray, title: str, style: OverlayStyle) -> np.ndarray:
    """The scan with one phrase's map shaded and outlined, as an RGB array."""
    pixels = np.asarray(view)
    fig, ax = plt.subplots(figsize=(3.6, 3.8))
    try:
        draw_overlay(ax, pixels, upsample_map(grid_map, pixels.shape[:2]), style, None, title)
        fig.tight_layout()
        fig.canvas.draw()
        return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    finally:
        plt.close(fig)


def phrase_label(scan: str, phrase: dict[str, Any]) -> str:
    """Dropdown label of a phrase: scan, number, phrase text and biomarker."""
    negated = ", stated absent" if phrase["negated"] else ""
    return f"{scan} | {phrase['index'] + 1:02d} \"{phrase['phrase']}\" ({phrase['biomarker']}{negated})"


def crops_strip(views: Sequence[Image.Image], names: Sequence[str], gap: int = 12) -> np.ndarray:
    """The model's views side by side, each under its file name, as one RGB array (a gallery would
    rescale them; this keeps every crop at its own pixel size)."""
    from PIL import ImageDraw

    side = max(v.size[0] for v in views)
    label = 16
    canvas = Image.new("RGB", (len(views) * (side + gap) - gap, side + label), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (view, name) in enumerate(zip(views, names)):
        left = i * (side + gap)
        draw.text((left + 2, 2), name if len(name) <= 30 else name[:27] + "...", fill="black")
        canvas.paste(view.convert("RGB"), (left, label))
    return np.asarray(canvas)


def png_base64(image: Image.Image) -> str:
    """A PNG of the image, base64-encoded (so the JSON download holds the crop the model saw)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def write_results(folder: Path, payload: dict[str, Any]) -> Path:
    """Write everything the page shows as JSON in a fresh sub-folder of `folder`.

    Returns:
        The JSON file.
    """
    target = folder / uuid.uuid4().hex / RESULTS_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"disclaimer": DISCLAIMER, **payload}, indent=2, default=_jsonable))
    return target


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return np.round(value.astype(float), 5).tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
