"""Curriculum part 1: tabular annotations -> QA records (see configs/generate_curriculum_part1.yaml)."""

import hydra
from omegaconf import DictConfig

from curriculum.api import generate_curriculum
from curriculum.errors import exit_on_error
from curriculum.secrets import guard_process_secrets

# Before Hydra composes: a key given as paths.openai_api_key=... must never reach a log line.
guard_process_secrets()


@hydra.main(version_base="1.3", config_path="../configs", config_name="generate_curriculum_part1")
def main(cfg: DictConfig) -> None:
    with exit_on_error():
        generate_curriculum(cfg)


if __name__ == "__main__":
    main()
