"""Mean and spread of every closed-ended metric over the seeds `make seeds` trained.

`python run/summarise_seeds.py seeds_dir=outputs/seeds`
"""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from curriculum.errors import exit_on_error
from curriculum.secrets import guard_process_secrets
from evaluation.seed_summary import summarise_seeds

guard_process_secrets()


@hydra.main(version_base="1.3", config_path="../configs", config_name="summarise_seeds")
def main(cfg: DictConfig) -> None:
    with exit_on_error():
        summarise_seeds(cfg.seeds_dir)
        print((Path(cfg.seeds_dir) / "seed_summary.md").read_text())


if __name__ == "__main__":
    main()
