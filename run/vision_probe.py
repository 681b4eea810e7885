"""Linear probes of registry models' image features on the train and test splits.

`python run/vision_probe.py pretrained_models=specialist_v5_192px dataset=retina`
"""

from omegaconf import DictConfig

from dataset.entry import entry
from evaluation.vision_probe import run_vision_probe


@entry("vision_probe")
def main(cfg: DictConfig) -> None:
    """Probe each model's pooled image features against the annotations; write vision_probe.csv."""
    run_vision_probe(cfg)


if __name__ == "__main__":
    main()
