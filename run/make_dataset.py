"""Generate the synthetic OCT phantom dataset.

    python run/make_dataset.py                                   # 3,000 scans into outputs/phantom
    python run/make_dataset.py dataset.phantom.num_images=500 dataset=retina_median
    python run/make_dataset.py samples_only=true                 # refresh the shipped samples
"""

from omegaconf import DictConfig

from dataset.entry import entry
from dataset.phantom import make_dataset


@entry("make_dataset")
def main(cfg: DictConfig) -> None:
    """Write the phantom scans, masks and annotation table (or only the shipped samples)."""
    make_dataset(cfg)


if __name__ == "__main__":
    main()
