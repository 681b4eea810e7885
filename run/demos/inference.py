"""Demo: a registry model answers questions about scans and prints the answers.

`python run/demos/inference.py paths=template`
"""

import hydra
from omegaconf import DictConfig

from curriculum.errors import exit_on_error
from curriculum.secrets import guard_process_secrets
from evaluation.demo import run_demo_inference


# Before Hydra composes: a key given as paths.openai_api_key=... must never reach a log line.
guard_process_secrets()


@hydra.main(version_base="1.3", config_path="../../configs", config_name="inference")
def main(cfg: DictConfig) -> None:
    with exit_on_error():
        for record in run_demo_inference(cfg):
            print(f"\n[{record['image']}]\nQ: {record['question']}\nA: {record['answer']}")


if __name__ == "__main__":
    main()
