"""Run-folder set-up shared by every entry script: seeding, logging and a redacted config."""

from __future__ import annotations

import logging
import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

logger = logging.getLogger(__name__)

# Key names whose values are secrets: api_key / apikey (but not api_key_file or api_key_env, which
# name where a key is kept), *_token / token (not max_tokens, tokenizer), secret, password.
SECRET_KEY_PATTERN = re.compile(r"api_?key(?!_file|_env)|secret|password|(^|_)token$")
REDACTED = "***redacted***"
RESOLVED_CONFIG = "resolved_config.yaml"


def is_secret_key(key: str) -> bool:
    """Whether a config key names a secret (its value must never be written out)."""
    return SECRET_KEY_PATTERN.search(key.lower()) is not None


def redact(value: Any) -> Any:
    """A copy of a plain config container with every secret-looking key's value replaced."""
    if isinstance(value, dict):
        return {k: (REDACTED if is_secret_key(str(k)) and v not in (None, "") else redact(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


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
    seed_everything(int(cfg.get("seed", 0)))
    try:
        container = OmegaConf.to_container(cfg, resolve=True)
    except Exception as err:  # noqa: BLE001 - keep the run going; record why the config is partial
        logger.warning("config could not be fully resolved (%s); saving it unresolved", type(err).__name__)
        container = OmegaConf.to_container(cfg, resolve=False)
    (run_dir / RESOLVED_CONFIG).write_text(OmegaConf.to_yaml(OmegaConf.create(redact(container))))
    logger.info("run folder: %s", run_dir)
    return run_dir
