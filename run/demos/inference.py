"""Demo: a registry model answers questions about scans and prints the answers.

`python run/demos/inference.py paths=template`

Unreadable files in the folder are skipped and listed on stderr; the exit status is non-zero only
with `demo.strict=true` or when no image could be read.
"""

import sys

from omegaconf import DictConfig

from dataset.entry import entry
from evaluation.demo import check_strict, run_demo_inference


@entry("inference")
def main(cfg: DictConfig) -> None:
    """Print the model's answers, list unreadable files, and fail under demo.strict."""
    result = run_demo_inference(cfg)
    for record in result:
        print(f"\n[{record['image']}]\nQ: {record['question']}\nA: {record['answer']}")
    for skipped in result.unreadable:
        sys.stderr.write(f"unreadable: {skipped['file']}: {skipped['reason']}\n")
    check_strict(result, bool(cfg.demo.get("strict", False)))


if __name__ == "__main__":
    main()
