"""Linear probes of registry models' image features on the train and test splits.

`python run/vision_probe.py pretrained_models=specialist_v5_192px dataset=retina`
"""

import hydra
from omegaconf import DictConfig

from curriculum.errors import exit_on_error
from curriculum.secrets import guard_process_secrets
from evaluation.vision_probe import run_vision_probe


# Before Hydra composes: a key given as paths.openai_api_key=... must never reach a log line.
guard_process_secrets()


@hydra.main(version_base="1.3", config_path="../configs", config_name="vision_probe")
def main(cfg: DictConfig) -> None:
    with exit_on_error():
        run_vision_probe(cfg)


if __name__ == "__main__":
    main()
