"""Report decoding settings compared on one model and one split: what a reader meets.

For each setting, the model writes a report per scan with the open-ended run's question and token
limit, and the script prints one JSON line: the stage and referral read from the reports (the
answer parser, as the open-ended rule judge reads them) with the share that states no stage, the
share of reports that state and deny the same finding, the share that repeat a sentence
(`evaluation.report_quality`), and the seconds it took. Choose on the validation split.

    python benchmarks/report_decoding.py --penalties 1.0 1.15
    python benchmarks/report_decoding.py --model-dir outputs/trials/NAME/seed_1/models/specialist_v5_192px \\
        --split validation --images 150 --penalties 1.0 1.05 1.1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
QUESTION = "Write a report for this OCT scan."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=ROOT / "outputs" / "models" / "specialist_v5_192px")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--images", type=int, default=None, help="at most this many scans (default: all)")
    parser.add_argument("--penalties", type=float, nargs="+", default=[1.0, 1.15],
                        help="repetition penalties to compare (1.0 = none)")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    args = parser.parse_args()

    from hydra import compose, initialize_config_dir
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from evaluation.data import load_evaluation_table, load_model_images
    from evaluation.parser import parse_answer
    from evaluation.report_quality import contradicted_findings, repeated_sentences
    from evaluation.tasks import build_tasks
    from models import generate_answers

    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(config_name="open_ended_evaluation",
                      overrides=[f"paths.root_dir={ROOT}", "dataset=retina", "run_dir=/tmp/report_decoding"])
    _, rows = load_evaluation_table(cfg.dataset, args.split, args.images)
    images = load_model_images(rows, cfg.dataset)
    model = AutoModelForImageTextToText.from_pretrained(args.model_dir).eval()
    processor = AutoProcessor.from_pretrained(args.model_dir)
    staging, referral = build_tasks("staging", {"question": ""})[0], build_tasks("referral", {"question": ""})[0]
    for penalty in args.penalties:
        start = time.perf_counter()
        reports = generate_answers(model, processor, images, [QUESTION] * len(images), args.max_new_tokens,
                                   batch_size=8, repetition_penalty=penalty)
        seconds = time.perf_counter() - start
        stages = [parse_answer(r, staging) for r in reports]
        referrals = [parse_answer(r, referral) for r in reports]
        n = len(reports)
        print(json.dumps({
            "model": str(args.model_dir), "split": args.split, "images": n, "repetition_penalty": penalty,
            "stage_accuracy": round(sum(p == t for p, t in zip(stages, rows["stage"])) / n, 3),
            "stage_none": round(stages.count(None) / n, 3),
            "referral_accuracy": round(sum(p == t for p, t in zip(referrals, rows["referral"])) / n, 3),
            "contradictory": round(sum(bool(contradicted_findings(r)) for r in reports) / n, 3),
            "repetitive": round(sum(repeated_sentences(r) > 0 for r in reports) / n, 3),
            "seconds": round(seconds, 1), "first_report": reports[0]}), flush=True)


if __name__ == "__main__":
    main()
