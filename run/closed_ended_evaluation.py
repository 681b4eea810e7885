"""Closed-ended evaluation of registry models (staging, referral or biomarkers) on the test split.

`python run/closed_ended_evaluation.py pretrained_models=specialist_v5_192px dataset=retina dataset/task=closed_ended_specialist_staging`
"""

import hydra
from omegaconf import DictConfig

from evaluation.closed_ended import run_closed_ended_evaluation


@hydra.main(version_base="1.3", config_path="../configs", config_name="closed_ended_evaluation")
def main(cfg: DictConfig) -> None:
    run_closed_ended_evaluation(cfg)


if __name__ == "__main__":
    main()
