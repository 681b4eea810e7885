"""Open-ended evaluation: models write reports for the test images; a judge scores them.

`python run/open_ended_evaluation.py pretrained_models=specialist_v5_192px`
"""

from omegaconf import DictConfig

from dataset.entry import entry
from evaluation.open_ended import run_open_ended_evaluation


@entry("open_ended_evaluation")
def main(cfg: DictConfig) -> None:
    """Have every configured model write reports and let the judge score them."""
    run_open_ended_evaluation(cfg)


if __name__ == "__main__":
    main()
