"""Write and print the blueprint's summary table from the run folders of `make pipeline`.

`python run/summarise_pipeline.py` (reads and writes `${paths.output_dir}/pipeline/`).
"""

from omegaconf import DictConfig

from dataset.entry import entry
from evaluation.pipeline_summary import write_pipeline_summary


@entry("summarise_pipeline")
def main(cfg: DictConfig) -> None:
    """Write the pipeline's summary table and print it."""
    print(write_pipeline_summary(cfg.pipeline_dir, cfg.specialist, cfg.base_model).read_text())


if __name__ == "__main__":
    main()
