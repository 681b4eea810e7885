"""Open-ended evaluation: models write reports for the test images; a judge scores them.

`python run/open_ended_evaluation.py pretrained_models=specialist_v5_192px`
"""

import hydra
from omegaconf import DictConfig

from curriculum.errors import exit_on_error
from curriculum.secrets import guard_process_secrets
from evaluation.open_ended import run_open_ended_evaluation


# Before Hydra composes: a key given as paths.openai_api_key=... must never reach a log line.
guard_process_secrets()


@hydra.main(version_base="1.3", config_path="../configs", config_name="open_ended_evaluation")
def main(cfg: DictConfig) -> None:
    with exit_on_error():
        run_open_ended_evaluation(cfg)


if __name__ == "__main__":
    main()
