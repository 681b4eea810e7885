"""Closed-ended evaluation of registry models (staging, referral or biomarkers) on the test split.

`python run/closed_ended_evaluation.py pretrained_models=specialist_v5_192px dataset=retina dataset/task=closed_ended_specialist_staging`
"""

from omegaconf import DictConfig

from dataset.entry import entry
from evaluation.closed_ended import run_closed_ended_evaluation


@entry("closed_ended_evaluation")
def main(cfg: DictConfig) -> None:
    """Score every configured model's closed-ended answers on the test split."""
    run_closed_ended_evaluation(cfg)


if __name__ == "__main__":
    main()
