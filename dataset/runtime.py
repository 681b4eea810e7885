"""Run-folder set-up behind every entry function: seeding, the run folder and its redacted config."""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from dataset.secrets import redact_config

logger = logging.getLogger(__name__)

RESOLVED_CONFIG = "resolved_config.yaml"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and (when imported) torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency, but data tools don't need it
        return
    torch.manual_seed(seed)


def prepare_run(cfg: DictConfig) -> Path:
    """Seed, create the run folder and write its resolved, redacted config.

    Args:
        cfg: the composed config; uses `cfg.run_dir` and `cfg.seed`.

    Returns:
        The run folder.
    """
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(int(cfg.seed))
    try:
        container = OmegaConf.to_container(cfg, resolve=True)
    except Exception as err:  # noqa: BLE001 - keep the run going; record why the config is partial
        logger.warning("config could not be fully resolved (%s); saving it unresolved", type(err).__name__)
        container = OmegaConf.to_container(cfg, resolve=False)
    (run_dir / RESOLVED_CONFIG).write_text(OmegaConf.to_yaml(OmegaConf.create(redact_config(container))))
    logger.info("run folder: %s", run_dir)
    return run_dir
