"""Grad-CAM saliency from report phrases to image regions, scored against lesion masks.

`python run/visual_language_gradcam.py dataset=retina dataset/task=language_visual_attention pretrained_models=specialist_v5_192px`
"""

import hydra
from omegaconf import DictConfig

from curriculum.errors import exit_on_error
from curriculum.secrets import guard_process_secrets
from saliency import run_visual_language_gradcam


# Before Hydra composes: a key given as paths.openai_api_key=... must never reach a log line.
guard_process_secrets()


@hydra.main(version_base="1.3", config_path="../configs", config_name="visual_language_gradcam")
def main(cfg: DictConfig) -> None:
    with exit_on_error():
        run_visual_language_gradcam(cfg)


if __name__ == "__main__":
    main()
