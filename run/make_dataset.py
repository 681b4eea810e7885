"""Generate the synthetic OCT phantom dataset.

    python run/make_dataset.py                                   # 3,000 scans into outputs/phantom
    python run/make_dataset.py dataset.phantom.num_images=500 dataset=retina_median
    python run/make_dataset.py samples_only=true                 # refresh the shipped samples
"""

import hydra
from omegaconf import DictConfig

from dataset.phantom import make_dataset


@hydra.main(version_base="1.3", config_path="../configs", config_name="make_dataset")
def main(cfg: DictConfig) -> None:
    make_dataset(cfg)


if __name__ == "__main__":
    main()
