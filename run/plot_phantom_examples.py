"""Plot phantom scans, one row per stage, with lesion masks outlined (the README figure).

`python run/plot_phantom_examples.py` -> docs/figures/phantom_grid.png
"""

import hydra
from omegaconf import DictConfig

from curriculum.errors import exit_on_error
from curriculum.secrets import guard_process_secrets
from dataset.phantom.figure import plot_phantom_grid

# Before Hydra composes: a key given as paths.openai_api_key=... must never reach a log line.
guard_process_secrets()


@hydra.main(version_base="1.3", config_path="../configs", config_name="plot_phantom_examples")
def main(cfg: DictConfig) -> None:
    with exit_on_error():
        plot_phantom_grid(cfg)


if __name__ == "__main__":
    main()
