"""Shared set-up for the phantom tests: composing `make_dataset` into a temporary folder."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


def phantom_cfg(tmp_path: Path, *overrides: str, config_name: str = "make_dataset"):
    """Compose a config whose every output lands under `tmp_path`."""
    base = [f"paths.root_dir={REPO}", f"paths.output_dir={tmp_path / 'outputs'}",
            f"run_dir={tmp_path / 'run'}",
            f"dataset.phantom.output_dir={tmp_path / 'phantom'}"]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name=config_name, overrides=base + list(overrides))
