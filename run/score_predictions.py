"""Score external predictions (JSONL of image id + label or free text) like our models' answers.

`python run/score_predictions.py dataset/task=closed_ended_specialist_staging predictions_files=[graders.jsonl]`
"""

from omegaconf import DictConfig

from dataset.entry import entry
from evaluation.external import score_external_predictions


@entry("score_predictions")
def main(cfg: DictConfig) -> None:
    """Score the external prediction files like the models' own answers."""
    score_external_predictions(cfg)


if __name__ == "__main__":
    main()
