"""Closed-ended evaluation of registry models (staging, referral or biomarkers) on the test split.

`python run/closed_ended_evaluation.py pretrained_models=specialist_v5_192px dataset=retina dataset/task=closed_ended_specialist_staging`
"""

import hydra
from omegaconf import DictConfig

from curriculum.errors import exit_on_error
from curriculum.secrets import guard_process_secrets
from evaluation.closed_ended import run_closed_ended_evaluation


# Before Hydra composes: a key given as paths.openai_api_key=... must never reach a log line.
guard_process_secrets()


@hydra.main(version_base="1.3", config_path="../configs", config_name="closed_ended_evaluation")
def main(cfg: DictConfig) -> None:
    with exit_on_error():
        run_closed_ended_evaluation(cfg)


if __name__ == "__main__":
    main()
