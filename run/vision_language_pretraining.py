"""Curriculum training of the specialist VLM (part 1 from `new`, part 2 from the part-1 model).

    python run/vision_language_pretraining.py dataset=retina pretrained_models=new dataset/task=curriculum_part_1_introduction_to_retina
    python run/vision_language_pretraining.py dataset=retina pretrained_models=retinavlm_base_192px dataset/task=curriculum_part_2_advanced_retinal_specialism

Multi-process: `accelerate launch --multi_gpu --num_processes 2 run/vision_language_pretraining.py ...`.
"""

from omegaconf import DictConfig

from dataset.entry import entry
from models.training import run_vision_language_pretraining


@entry("vision_language_pretraining")
def main(cfg: DictConfig) -> None:
    """Train the configured stage and save the model to the registry."""
    run_vision_language_pretraining(cfg)


if __name__ == "__main__":
    main()
