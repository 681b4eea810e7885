"""Generate the synthetic OCT phantom dataset.

    python run/make_dataset.py                                   # 3,000 scans into outputs/phantom
    python run/make_dataset.py dataset.phantom.num_images=500 dataset=retina_median
    python run/make_dataset.py samples_only=true                 # refresh the shipped samples
"""

import hydra
from omegaconf import DictConfig

from curriculum.errors import exit_on_error
from curriculum.secrets import guard_process_secrets
from dataset.phantom import make_dataset
from dataset.phantom.settings import check_phantom_settings

# Before Hydra composes: a key given as paths.openai_api_key=... must never reach a log line.
guard_process_secrets()


@hydra.main(version_base="1.3", config_path="../configs", config_name="make_dataset")
def main(cfg: DictConfig) -> None:
    with exit_on_error():
        check_phantom_settings(cfg.dataset, bool(cfg.get("samples_only", False)))
        make_dataset(cfg)


if __name__ == "__main__":
    main()
