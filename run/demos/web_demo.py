"""Web demo: a browser page where a registry model reads OCT scans, with its reasons and maps.

`python run/demos/web_demo.py paths=template` (then open http://127.0.0.1:7860)
"""

import hydra
from omegaconf import DictConfig

from curriculum.errors import exit_on_error
from curriculum.secrets import guard_process_secrets
from evaluation.web_demo import run_web_demo


# Before Hydra composes: a key given as paths.openai_api_key=... must never reach a log line.
guard_process_secrets()


@hydra.main(version_base="1.3", config_path="../../configs", config_name="web_demo")
def main(cfg: DictConfig) -> None:
    with exit_on_error():
        run_web_demo(cfg)


if __name__ == "__main__":
    main()
