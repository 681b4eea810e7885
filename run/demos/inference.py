"""Demo: a registry model answers questions about scans and prints the answers.

`python run/demos/inference.py paths=template`

Unreadable files in the folder are skipped and listed on stderr; the exit status is non-zero only
with `demo.strict=true` or when no image could be read.
"""

import sys

import hydra
from omegaconf import DictConfig

from curriculum.errors import exit_on_error
from curriculum.secrets import guard_process_secrets
from evaluation.demo import check_strict, run_demo_inference


# Before Hydra composes: a key given as paths.openai_api_key=... must never reach a log line.
guard_process_secrets()


@hydra.main(version_base="1.3", config_path="../../configs", config_name="inference")
def main(cfg: DictConfig) -> None:
    with exit_on_error():
        result = run_demo_inference(cfg)
        for record in result:
            print(f"\n[{record['image']}]\nQ: {record['question']}\nA: {record['answer']}")
        for skipped in result.unreadable:
            sys.stderr.write(f"unreadable: {skipped['file']}: {skipped['reason']}\n")
        check_strict(result, bool(cfg.demo.get("strict", False)))


if __name__ == "__main__":
    main()
