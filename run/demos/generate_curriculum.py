"""Demo: a small curriculum from dataset/sample_annotations/ (see configs/generate_curriculum.yaml)."""

from omegaconf import DictConfig

from curriculum.api import generate_curriculum
from dataset.entry import entry


@entry("generate_curriculum")
def main(cfg: DictConfig) -> None:
    """Generate (or resume) the demo's QA records from the sample annotations."""
    generate_curriculum(cfg)


if __name__ == "__main__":
    main()
