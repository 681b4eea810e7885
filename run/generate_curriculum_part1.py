"""Curriculum part 1: tabular annotations -> QA records (see configs/generate_curriculum_part1.yaml)."""

from omegaconf import DictConfig

from curriculum.api import generate_curriculum
from dataset.entry import entry


@entry("generate_curriculum_part1")
def main(cfg: DictConfig) -> None:
    """Generate (or resume) part 1's QA records from the tabular annotations."""
    generate_curriculum(cfg)


if __name__ == "__main__":
    main()
