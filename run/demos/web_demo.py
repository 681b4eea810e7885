"""Web demo: a browser page where a registry model reads OCT scans, with its reasons and maps.

`python run/demos/web_demo.py paths=template` (then open http://127.0.0.1:7860)
"""

from omegaconf import DictConfig

from dataset.entry import entry
from evaluation.web_demo import run_web_demo


@entry("web_demo")
def main(cfg: DictConfig) -> None:
    """Serve the web demo until interrupted."""
    run_web_demo(cfg)


if __name__ == "__main__":
    main()
