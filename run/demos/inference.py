"""Demo: a registry model answers questions about scans and prints the answers.

`python run/demos/inference.py paths=template`
"""

import hydra
from omegaconf import DictConfig

from evaluation.demo import run_demo_inference


@hydra.main(version_base="1.3", config_path="../../configs", config_name="inference")
def main(cfg: DictConfig) -> None:
    for record in run_demo_inference(cfg):
        print(f"\n[{record['image']}]\nQ: {record['question']}\nA: {record['answer']}")


if __name__ == "__main__":
    main()
