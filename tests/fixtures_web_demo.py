"""A trained tiny model pair for web-demo tests: part 1 and part 2 of the curriculum on the training
fixture's scans (answers about a visible bright band), and a calibrated closed-ended staging
evaluation of the specialist, so its model card carries option biases. About a minute on 2 cores.
"""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir

from fixtures_training import part_2_overrides, training_overrides, write_training_data

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


def _compose(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


def web_demo_overrides(root: Path) -> list[str]:
    """Hydra overrides that point the web demo (or `run/demos/inference.py`) at the trained pair."""
    return [f"paths.root_dir={REPO}", f"paths.output_dir={root}/outputs", f"paths.data_dir={root}/data",
            f"paths.curriculum_dir={root}/curriculum", f"run_dir={root}/web_run"]


def train_demo_models(root: Path, steps: int = 150) -> dict:
    """Train `retinavlm_base_192px` and `specialist_v5_192px` under `root` and evaluate the specialist.

    Returns:
        {"table": annotations.csv, "models": model folder, "evaluation": the evaluation's output}.
    """
    from evaluation.closed_ended import run_closed_ended_evaluation
    from models.training import run_vision_language_pretraining

    table = write_training_data(root)
    longer = [f"training.max_steps={steps}", "training.eval_every=1000", "training.checkpoint_every=1000"]
    run_vision_language_pretraining(_compose("vision_language_pretraining", training_overrides(root, longer)))
    run_vision_language_pretraining(_compose("vision_language_pretraining", training_overrides(
        root, ["pretrained_models=retinavlm_base_192px", f"run_dir={root / 'run2'}", *longer, *part_2_overrides()])))
    evaluation = run_closed_ended_evaluation(_compose("closed_ended_evaluation", [
        *web_demo_overrides(root), f"run_dir={root / 'evaluation'}", "models=[specialist_v5_192px]",
        "evaluation.statistics.n_resamples=20", "evaluation.figures=false"]))
    return {"table": table, "models": root / "outputs" / "models", "evaluation": evaluation}
