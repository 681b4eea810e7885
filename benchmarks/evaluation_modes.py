"""Throughput of the closed-ended answer modes, on the same model and the same test images.

Prints images/s for `likelihood` vs `two_step` staging, for the ten biomarker questions scored one
at a time vs sharing each image's prompt start (`evaluation.likelihood.score_questions`), and for
batched vs one-at-a-time generation, each as a ratio against its baseline measured in this run.
`--compare-autocast` also times option scoring and report generation in float32 against bf16
autocast (`evaluation.generation.mixed_precision` switches the scoring), with how often the two
pick the same option.

    python benchmarks/evaluation_modes.py                       # trained specialist if present
    python benchmarks/evaluation_modes.py --model-dir outputs/models/specialist_v5_192px --images 32
    python benchmarks/evaluation_modes.py --tiny                # a tiny random model (no training needed)
    python benchmarks/evaluation_modes.py --compare-autocast --images 64
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "outputs" / "models" / "specialist_v5_192px"
DEFAULT_TABLE = ROOT / "outputs" / "phantom" / "annotations.csv"
REPORT_QUESTION = ("Write a full report of this scan: the findings, the stage, the referral, and why the stage "
                   "is neither more nor less advanced.")
TEMPLATE = "Here is a report about this scan:\n{report}\n\n{question}"


def _images(count: int) -> tuple[list[Image.Image], str]:
    if DEFAULT_TABLE.is_file():
        from omegaconf import OmegaConf

        from evaluation.data import load_evaluation_table, load_model_images

        dataset = OmegaConf.create({"annotations_file": str(DEFAULT_TABLE), "images_dir": None,
                                    "image_height": 208, "image_width": 256, "crop_size": 192})
        _, rows = load_evaluation_table(dataset, "test", count)
        return load_model_images(rows, dataset), f"{len(rows)} phantom test images"
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (192, 192), dtype=np.uint8)) for _ in range(count)], \
        f"{count} random images (no phantom at {DEFAULT_TABLE})"


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--tiny", action="store_true", help="benchmark a tiny random model instead")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--device", default=None)
    parser.add_argument("--compare-autocast", action="store_true",
                        help="also time scoring and generation under bf16 autocast against float32")
    args = parser.parse_args()

    from omegaconf import OmegaConf

    from evaluation.answer_modes import ReportCache, answer_by_likelihood, answer_task
    from evaluation.closed_ended import build_task_list
    from evaluation.tasks import build_tasks
    from evaluation.vision_models import LocalVisionModel
    from models.registry import open_model

    model_dir = args.model_dir
    if args.tiny or not (model_dir / "config.json").is_file():
        sys.path.insert(0, str(ROOT / "tests"))
        from support.tiny_models import save_tiny_vlm

        model_dir = save_tiny_vlm(Path(tempfile.mkdtemp()) / "tiny_vlm")
    images, source = _images(args.images)
    ids = [str(i) for i in range(len(images))]
    opened = open_model({"name": "bench", "kind": "local", "path": str(model_dir)}, device=args.device)
    model = LocalVisionModel("bench", *opened, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                             score_batch_size=args.batch_size * 6)
    task = build_tasks("staging", {"question": "What is the AMD stage of this scan?"})[0]
    prompts = {"report_question": REPORT_QUESTION, "two_step_template": TEMPLATE}
    print(f"model: {model_dir}\nimages: {source}; batch size {args.batch_size}; "
          f"max_new_tokens {args.max_new_tokens}; device {next(model.model.parameters()).device}")

    answer_task(model, task, ids[:2], images[:2], "likelihood", prompts)  # warm-up
    two_step = _timed(lambda: answer_task(model, task, ids, images, "two_step", prompts, ReportCache()))
    likelihood = _timed(lambda: answer_task(model, task, ids, images, "likelihood", prompts))
    n = len(images)
    print(f"\nstaging, {n} images")
    print(f"  two_step   (baseline) {n / two_step:8.2f} images/s")
    print(f"  likelihood            {n / likelihood:8.2f} images/s   x{two_step / likelihood:.1f}")

    biomarkers = build_task_list(OmegaConf.load(ROOT / "configs/dataset/task/closed_ended_specialist_biomarkers.yaml"))
    one_by_one = _timed(lambda: [answer_by_likelihood(model, [t], images) for t in biomarkers])
    shared = _timed(lambda: answer_by_likelihood(model, biomarkers, images))
    print(f"\n{len(biomarkers)} biomarker questions (likelihood), {n} images")
    print(f"  one question at a time (baseline) {n / one_by_one:8.2f} images/s")
    print(f"  shared image pass                 {n / shared:8.2f} images/s   x{one_by_one / shared:.1f}")

    questions = [REPORT_QUESTION] * n
    model.batch_size = 1
    single = _timed(lambda: model.generate(images, questions))
    model.batch_size = args.batch_size
    batched = _timed(lambda: model.generate(images, questions))
    print(f"\nreport generation, {n} images")
    print(f"  one at a time (baseline) {n / single:8.2f} images/s")
    print(f"  batched ({args.batch_size:>2})            {n / batched:8.2f} images/s   x{single / batched:.1f}")
    if args.compare_autocast:
        _compare_autocast(model, task, images, questions)


def _compare_autocast(model, task, images, questions) -> None:
    """float32 (baseline) against bf16 autocast: option scoring (what `mixed_precision` switches)
    and batched generation (autocast applied here: the evaluation generates in float32, as this
    comparison found bf16 decoding slower on 2 cores)."""
    from models.precision import autocast, native_bf16

    n, options = len(images), list(task.option_texts.values())
    timings, scores, reports = {}, {}, {}
    for precision in ("no", "bf16"):
        model.mixed_precision = precision
        model.score_options(images[:2], task.question, options)  # warm-up
        start = time.perf_counter()
        scores[precision] = model.score_options(images, task.question, options)
        timings[precision, "score"] = time.perf_counter() - start
        start = time.perf_counter()
        with autocast(precision, next(model.model.parameters()).device):
            reports[precision] = model.generate(images, questions)
        timings[precision, "generate"] = time.perf_counter() - start
    model.mixed_precision = "no"
    print(f"\nbf16 autocast against float32, {n} images (bf16 native here: {native_bf16()})")
    for step, what in (("score", "staging option scores"), ("generate", "report generation")):
        base, bf16 = timings["no", step], timings["bf16", step]
        print(f"  {what:<22} float32 (baseline) {n / base:8.2f} images/s, bf16 {n / bf16:8.2f} images/s   "
              f"x{base / bf16:.2f}")
    same = float((scores["no"].argmax(1) == scores["bf16"].argmax(1)).mean())
    gap = float(abs(scores["no"] - scores["bf16"]).mean())
    identical = sum(a == b for a, b in zip(reports["no"], reports["bf16"]))
    print(f"  same option chosen for {same:.1%} of images; mean |score difference| {gap:.3f} nats; "
          f"{identical} of {n} reports identical")


if __name__ == "__main__":
    main()
