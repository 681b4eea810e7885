"""Curriculum part 2: specialist reports -> QA records (see configs/generate_curriculum_part2.yaml)."""

from omegaconf import DictConfig

from curriculum.api import generate_curriculum
from dataset.entry import entry


@entry("generate_curriculum_part2")
def main(cfg: DictConfig) -> None:
    """Generate (or resume) part 2's QA records from the specialist reports."""
    generate_curriculum(cfg)


if __name__ == "__main__":
    main()
