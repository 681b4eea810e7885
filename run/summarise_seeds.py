"""Mean and spread of every closed-ended metric over the seeds `make seeds` trained.

`python run/summarise_seeds.py seeds_dir=outputs/seeds`
"""

from pathlib import Path

from omegaconf import DictConfig

from dataset.entry import entry
from evaluation.seed_summary import summarise_seeds


@entry("summarise_seeds")
def main(cfg: DictConfig) -> None:
    """Write the seed summary tables and print the markdown one."""
    summarise_seeds(cfg.seeds_dir)
    print((Path(cfg.seeds_dir) / "seed_summary.md").read_text())


if __name__ == "__main__":
    main()
