"""Curriculum training of the specialist VLM (part 1 from `new`, part 2 from the part-1 model).

    python run/vision_language_pretraining.py dataset=retina pretrained_models=new dataset/task=curriculum_part_1_introduction_to_retina
    python run/vision_language_pretraining.py dataset=retina pretrained_models=retinavlm_base_192px dataset/task=curriculum_part_2_advanced_retinal_specialism

Multi-process: `accelerate launch --multi_gpu --num_processes 2 run/vision_language_pretraining.py ...`.
"""

import hydra
from omegaconf import DictConfig

from curriculum.errors import exit_on_error
from curriculum.secrets import guard_process_secrets
from models.training import run_vision_language_pretraining


# Before Hydra composes: a key given as paths.openai_api_key=... must never reach a log line.
guard_process_secrets()


@hydra.main(version_base="1.3", config_path="../configs", config_name="vision_language_pretraining")
def main(cfg: DictConfig) -> None:
    with exit_on_error():
        run_vision_language_pretraining(cfg)


if __name__ == "__main__":
    main()
