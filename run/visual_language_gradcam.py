"""Grad-CAM saliency from report phrases to image regions, scored against lesion masks.

`python run/visual_language_gradcam.py dataset=retina dataset/task=language_visual_attention pretrained_models=specialist_v5_192px`
"""

from omegaconf import DictConfig

from dataset.entry import entry
from saliency import run_visual_language_gradcam


@entry("visual_language_gradcam")
def main(cfg: DictConfig) -> None:
    """Map report phrases to image regions and score them against the lesion masks."""
    run_visual_language_gradcam(cfg)


if __name__ == "__main__":
    main()
