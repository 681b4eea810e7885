"""Score external predictions (JSONL of image id + label or free text) like our models' answers.

`python run/score_predictions.py dataset/task=closed_ended_specialist_staging predictions_files=[graders.jsonl]`
"""

import hydra
from omegaconf import DictConfig

from curriculum.errors import exit_on_error
from curriculum.secrets import guard_process_secrets
from evaluation.external import score_external_predictions


# Before Hydra composes: a key given as paths.openai_api_key=... must never reach a log line.
guard_process_secrets()


@hydra.main(version_base="1.3", config_path="../configs", config_name="score_predictions")
def main(cfg: DictConfig) -> None:
    with exit_on_error():
        score_external_predictions(cfg)


if __name__ == "__main__":
    main()
