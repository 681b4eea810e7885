"""Import the released RetinaVLM weights into the model registry (CPU, no remote code).

`python run/import_retinavlm.py source=/models/RetinaVLM/RetinaVLM-Specialist llm=/models/Meta-Llama-3-8B-Instruct name=retinavlm-specialist`
"""

import json

from omegaconf import DictConfig

from dataset.entry import entry
from models.retinavlm_import import run_import


@entry("import_retinavlm")
def main(cfg: DictConfig) -> None:
    """Convert the released checkpoint into a registry model and print the import report."""
    print(json.dumps(run_import(cfg), indent=2))


if __name__ == "__main__":
    main()
