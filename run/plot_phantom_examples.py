"""Plot phantom scans, one row per stage, with lesion masks outlined (the README figure).

`python run/plot_phantom_examples.py` -> docs/figures/phantom_grid.png
"""

import hydra
from omegaconf import DictConfig

from dataset.phantom.figure import plot_phantom_grid


@hydra.main(version_base="1.3", config_path="../configs", config_name="plot_phantom_examples")
def main(cfg: DictConfig) -> None:
    plot_phantom_grid(cfg)


if __name__ == "__main__":
    main()
