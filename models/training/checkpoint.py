"""Checkpoints for exact resume: accelerate's save_state (weights, optimiser, scheduler, RNG)
plus the step counter and a fingerprint of the configuration that produced them."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

logger = logging.getLogger(__name__)

STATE_FILE = "trainer_state.json"
PREFIX = "step_"


def config_fingerprint(values: dict) -> str:
    """A short stable hash of the settings a checkpoint must share with the run resuming it."""
    return hashlib.sha1(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]


def save_checkpoint(accelerator, checkpoint_dir: Path, step: int, fingerprint: str, keep: int = 2) -> Path:
    """Save the full training state at `step`, then prune all but the newest `keep` checkpoints.

    The state file is written last, so a checkpoint without it (killed mid-save) is never resumed.
    """
    path = checkpoint_dir / f"{PREFIX}{step:08d}"
    accelerator.save_state(str(path))
    if accelerator.is_main_process:
        (path / STATE_FILE).write_text(json.dumps({"step": step, "fingerprint": fingerprint}))
        for old in list_checkpoints(checkpoint_dir)[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return path


def list_checkpoints(checkpoint_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    if not checkpoint_dir.is_dir():
        return []
    return sorted(p for p in checkpoint_dir.glob(f"{PREFIX}*") if (p / STATE_FILE).is_file())


def find_resumable(checkpoint_dir: Path, fingerprint: str) -> tuple[Path, int] | None:
    """The newest checkpoint made with the same configuration, as (path, step); None if there is none."""
    checkpoints = list_checkpoints(checkpoint_dir)
    if not checkpoints:
        return None
    state = json.loads((checkpoints[-1] / STATE_FILE).read_text())
    if state.get("fingerprint") != fingerprint:
        logger.warning("checkpoints in %s were made with another configuration; starting afresh "
                       "(delete the folder or restore the configuration to resume)", checkpoint_dir)
        return None
    return checkpoints[-1], int(state["step"])
