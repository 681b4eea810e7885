"""Speed of phrase Grad-CAM, as ratios against baselines measured in the same run.

    python benchmarks/saliency_speed.py                                   # the trained specialist if present
    python benchmarks/saliency_speed.py --model outputs/models/specialist_v5_192px --phrases 6 --repeats 3

Baseline: one plain teacher-forced forward pass (no gradients) of the same input. Measured: Grad-CAM
for P phrases one phrase per pass, P phrases in one batched pass, and with 4-sample smoothing.
Without a trained model, a fresh default-size model (configs/model) is built.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from PIL import Image  # noqa: E402

from models import build_vlm, format_prompt, load_vlm  # noqa: E402
from saliency import GradCamSettings, PhraseGradCam, build_teacher_forced_input, build_vocabulary  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REPORT = ("Large drusen are seen nasally with a drusenoid PED and RPE elevation. Subretinal fluid and "
          "intraretinal fluid temporally, with hyperreflective foci and subretinal hyperreflective material.")


def _model(path: Path | None):
    if path is not None and (path / "config.json").is_file():
        return load_vlm(path, device="cpu"), str(path)
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(config_name="visual_language_gradcam", overrides=[f"paths.root_dir={ROOT}", "run_dir=/tmp"])
    model, processor = build_vlm(OmegaConf.to_container(cfg.model, resolve=True), [REPORT] * 20)
    return (model.eval(), processor), "fresh default build"


def _timed(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "outputs" / "models" / "specialist_v5_192px")
    parser.add_argument("--phrases", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    (model, processor), source = _model(args.model)
    phrases = build_vocabulary().find(REPORT, include_negated=False)[: args.phrases]
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (192, 192), dtype=np.uint8))
    example = build_teacher_forced_input(processor, image, format_prompt(processor, "Write a report for this OCT scan.",
                                                                         answer=REPORT), REPORT)
    mask = example.target_mask(phrases)

    def forward():
        with torch.no_grad():
            model(input_ids=example.input_ids, pixel_values=example.pixel_values.to(model.dtype),
                  attention_mask=example.attention_mask)

    base = _timed(forward, args.repeats)
    timings = {
        "one phrase per pass": _timed(lambda: PhraseGradCam(model, GradCamSettings(phrase_batch_size=1)).maps(example, mask), args.repeats),
        f"{len(phrases)} phrases per pass": _timed(lambda: PhraseGradCam(model, GradCamSettings(phrase_batch_size=len(phrases))).maps(example, mask), args.repeats),
        "batched + 4-sample smoothing": _timed(lambda: PhraseGradCam(model, GradCamSettings(phrase_batch_size=len(phrases), smoothing_samples=4)).maps(example, mask), args.repeats),
    }
    print(f"model: {source}; torch threads: {torch.get_num_threads()}; {len(phrases)} phrases; "
          f"{example.input_ids.shape[1]} tokens")
    print(f"baseline: one plain forward pass = {base:.4f} s")
    for name, seconds in timings.items():
        print(f"{name:32s} {seconds / len(phrases):.4f} s/phrase = {seconds / len(phrases) / base:6.2f} x forward pass")
    one, batched = timings["one phrase per pass"], timings[f"{len(phrases)} phrases per pass"]
    print(f"batching speed-up: {one / batched:.2f} x")


if __name__ == "__main__":
    main()
