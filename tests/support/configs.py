"""Composing the project's Hydra configs in tests, with every output under the test's own folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"


def compose_overrides(config_name: str, overrides: list[str]) -> Any:
    """Compose the primary config `config_name` from `configs/` with exactly `overrides`."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides)


def compose_config(config_name: str, tmp_path: Path, overrides: list[str]) -> Any:
    """Compose a primary config whose every directory lies under `tmp_path`."""
    base = [f"paths.root_dir={ROOT}", f"paths.output_dir={tmp_path / 'outputs'}", f"run_dir={tmp_path / 'run'}"]
    return compose_overrides(config_name, base + overrides)


def phantom_cfg(tmp_path: Path, *overrides: str, config_name: str = "make_dataset") -> Any:
    """Compose a phantom config (`make_dataset` by default) that writes the phantom under `tmp_path`."""
    return compose_config(config_name, tmp_path, [f"dataset.phantom.output_dir={tmp_path / 'phantom'}",
                                                  *overrides])


def config_entry(group: str, option: str, **overrides: Any) -> dict[str, Any]:
    """One shipped config file, `configs/<group>/<option>.yaml`, as a plain dict updated by `overrides`.

    Library functions read every key their config node carries, so tests that call them directly pass
    the YAML's full entry (changing only what the test is about) rather than a partial dict.

    Args:
        group: the config group folder, e.g. `model/vision_encoder` or `training`.
        option: the file's stem, e.g. `tiny_levit`.
        overrides: keys to replace; nested dicts are merged into the entry's own.

    Returns:
        The entry; interpolations (`${paths.*}`, `${dataset.*}`) stay as written unless overridden.
    """
    node = OmegaConf.merge(OmegaConf.load(CONFIGS / group / f"{option}.yaml"), overrides)
    node.pop("defaults", None)  # its own keys only: a defaults list is not followed
    return OmegaConf.to_container(node)


def training_policy(**overrides: Any) -> dict[str, Any]:
    """The default training policy (`configs/training/default.yaml`'s `policy`) updated by `overrides`."""
    return config_entry("training", "default", policy=overrides)["policy"]
