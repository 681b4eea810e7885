"""Import the released RetinaVLM weights into the model registry (CPU, no remote code).

`python run/import_retinavlm.py source=/models/RetinaVLM/RetinaVLM-Specialist llm=/models/Meta-Llama-3-8B-Instruct name=retinavlm-specialist`
"""

import json

import hydra
from omegaconf import DictConfig

from curriculum.errors import exit_on_error
from curriculum.secrets import guard_process_secrets
from models.retinavlm_import import run_import

# Before Hydra composes: a key given as paths.openai_api_key=... (or mistyped) must never reach a log line.
guard_process_secrets()


@hydra.main(version_base="1.3", config_path="../configs", config_name="import_retinavlm")
def main(cfg: DictConfig) -> None:
    with exit_on_error():
        report = run_import(cfg)
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
