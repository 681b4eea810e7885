"""Write and print the blueprint's summary table from the run folders of `make pipeline`.

`python run/summarise_pipeline.py` (reads and writes `${paths.output_dir}/pipeline/`).
"""

import hydra
from omegaconf import DictConfig

from curriculum.errors import exit_on_error
from curriculum.secrets import guard_process_secrets
from evaluation.pipeline_summary import write_pipeline_summary

guard_process_secrets()


@hydra.main(version_base="1.3", config_path="../configs", config_name="summarise_pipeline")
def main(cfg: DictConfig) -> None:
    with exit_on_error():
        print(write_pipeline_summary(cfg.pipeline_dir, cfg.specialist, cfg.base_model).read_text())


if __name__ == "__main__":
    main()
