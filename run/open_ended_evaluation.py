"""Open-ended evaluation: models write reports for the test images; a judge scores them.

`python run/open_ended_evaluation.py pretrained_models=specialist_v5_192px`
"""

import hydra
from omegaconf import DictConfig

from evaluation.open_ended import run_open_ended_evaluation


@hydra.main(version_base="1.3", config_path="../configs", config_name="open_ended_evaluation")
def main(cfg: DictConfig) -> None:
    run_open_ended_evaluation(cfg)


if __name__ == "__main__":
    main()
