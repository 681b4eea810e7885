"""Plot phantom scans, one row per stage, with lesion masks outlined (the README figure).

`python run/plot_phantom_examples.py` -> docs/figures/phantom_grid.png
"""

from omegaconf import DictConfig

from dataset.entry import entry
from dataset.phantom.figure import plot_phantom_grid


@entry("plot_phantom_examples")
def main(cfg: DictConfig) -> None:
    """Draw the phantom example grid."""
    plot_phantom_grid(cfg)


if __name__ == "__main__":
    main()
