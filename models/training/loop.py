"""The optimisation loop: gradient accumulation, clipping, LR schedule, evaluation, checkpoints.

Runs unchanged on one CPU, one GPU or many processes under `accelerate launch`: accelerate wraps
the model (DDP/FSDP) and the optimiser; batches come from a deterministic planned sampler so that
resuming at step s replays exactly the batches an uninterrupted run would see from s on.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_scheduler

from models.policies import train_mode
from models.training.averaging import TailAverage
from models.training.checkpoint import find_resumable, save_checkpoint
from models.training.collate import QACollator
from models.training.data import CurriculumDataset, EpochPlan, PlannedBatchSampler
from models.training.grounding import GroundingTally, tally_batch

logger = logging.getLogger(__name__)


@dataclass
class LoopResult:
    """What a training loop reports: steps done, losses, the image-reliance gap, wall time."""

    steps: int
    start_step: int
    train_losses: list[tuple[int, float]] = field(default_factory=list)
    eval_losses: list[tuple[int, float]] = field(default_factory=list)
    # (step, module -> {loss, swapped_loss, gap}) at every evaluation; see models.training.grounding.
    grounding: list[tuple[int, dict[str, dict[str, float]]]] = field(default_factory=list)
    wall_time_s: float = 0.0


def build_optimizer(model, cfg: Mapping[str, Any]) -> torch.optim.Optimizer:
    """AdamW over trainable parameters; no weight decay on biases and norms (1-D tensors)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": float(cfg["weight_decay"])},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=float(cfg["learning_rate"]), betas=tuple(cfg["betas"]))


def run_training_loop(accelerator, model, collator: QACollator, train_set: CurriculumDataset, plan: EpochPlan,
                      eval_set: CurriculumDataset | None, cfg: Mapping[str, Any], checkpoint_dir: Path,
                      fingerprint: str) -> LoopResult:
    """Train for `cfg.max_steps` optimiser steps, resuming from the newest matching checkpoint.

    Args:
        accelerator: an `accelerate.Accelerator` (trackers already initialised).
        model: the model with its trainable policy applied (not yet prepared).
        collator: builds batches with answer-only labels.
        train_set, plan: training examples and their weighted epoch plan.
        eval_set: validation examples (centre crops) or None.
        cfg: the `training` config node.
        checkpoint_dir: folder of this configuration's checkpoints.
        fingerprint: configuration hash stored with checkpoints.

    Returns:
        Steps, loss curves and wall time.
    """
    started = time.perf_counter()
    max_steps = int(cfg["max_steps"])
    accumulation = int(cfg["gradient_accumulation_steps"])
    optimizer = build_optimizer(model, cfg)
    scheduler = get_scheduler(cfg["lr_schedule"], optimizer,
                              num_warmup_steps=int(cfg["warmup_steps"]), num_training_steps=max_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    # Not prepared: accelerate would step it once per process; registered so it is checkpointed.
    accelerator.register_for_checkpointing(scheduler)
    average_last = float(cfg.get("average_last") or 0.0)
    average = TailAverage(model, max_steps, average_last) if average_last > 0 else None
    if average is not None:
        accelerator.register_for_checkpointing(average)
    start_step = 0
    resumable = find_resumable(checkpoint_dir, fingerprint) if cfg["resume"] else None
    if resumable:
        accelerator.load_state(str(resumable[0]))
        start_step = resumable[1]
        logger.info("resumed from %s (step %d)", resumable[0], start_step)
    sampler = PlannedBatchSampler(plan, int(cfg["batch_size"]), accelerator.num_processes,
                                  accelerator.process_index, start=start_step * accumulation)
    loader = DataLoader(train_set, batch_sampler=sampler, collate_fn=collator,
                        num_workers=int(cfg["num_workers"]))
    result = LoopResult(steps=start_step, start_step=start_step)
    batches = iter(loader)
    progress = tqdm(range(start_step, max_steps), initial=start_step, total=max_steps, desc="training",
                    disable=not accelerator.is_local_main_process)
    train_mode(model)
    window: list[float] = []
    for step in progress:
        loss = _optimizer_step(accelerator, model, optimizer, scheduler, batches, accumulation,
                               float(cfg["max_grad_norm"]))
        window.append(loss)
        done = step + 1
        result.steps = done
        if average is not None:
            average.update(done)
            if done == max_steps:  # the last evaluation and checkpoint see the weights that are saved
                average.copy_to_model()
        if done % int(cfg["log_every"]) == 0 or done == max_steps:
            mean = sum(window) / len(window)
            window.clear()
            result.train_losses.append((done, mean))
            accelerator.log({"train/loss": mean, "train/lr": scheduler.get_last_lr()[0]}, step=done)
            progress.set_postfix(loss=f"{mean:.3f}")
        if eval_set is not None and (done % int(cfg["eval_every"]) == 0 or done == max_steps):
            grounding = evaluate_grounding(accelerator, model, collator, eval_set, cfg)
            result.eval_losses.append((done, grounding["all"]["loss"]))
            result.grounding.append((done, grounding))
            accelerator.log({"eval/loss": grounding["all"]["loss"], "eval/grounding_gap": grounding["all"]["gap"],
                             **{f"eval/grounding_gap/{m}": v["gap"] for m, v in grounding.items() if m != "all"}},
                            step=done)
            logger.info("step %d: validation loss %.4f, image-reliance gap %.4f (%s)", done,
                        grounding["all"]["loss"], grounding["all"]["gap"],
                        ", ".join(f"{m} {v['gap']:.3f}" for m, v in grounding.items() if m != "all"))
        if done % int(cfg["checkpoint_every"]) == 0 or done == max_steps:
            save_checkpoint(accelerator, checkpoint_dir, done, fingerprint, int(cfg["keep_checkpoints"]))
    result.wall_time_s = time.perf_counter() - started
    return result


def _optimizer_step(accelerator, model, optimizer, scheduler, batches, accumulation: int,
                    max_grad_norm: float) -> float:
    """One optimiser update over `accumulation` micro-batches; returns the mean loss across processes."""
    total = torch.zeros((), device=accelerator.device)
    for micro in range(accumulation):
        batch = {k: v.to(accelerator.device) for k, v in next(batches).items()}
        # Skip the gradient all-reduce on all but the last micro-batch.
        sync = contextlib.nullcontext() if micro == accumulation - 1 else accelerator.no_sync(model)
        with sync, accelerator.autocast():
            loss = model(**batch).loss / accumulation
            accelerator.backward(loss)
        total += loss.detach()
    if max_grad_norm > 0:
        accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return accelerator.reduce(total, reduction="mean").item()


@torch.no_grad()
def evaluate_grounding(accelerator, model, collator: QACollator, eval_set: CurriculumDataset,
                       cfg: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Validation answer loss with each scan's own image and with images swapped across the batch.

    Args:
        accelerator: shards the examples across processes and sums the tallies.
        model: the model under training (set to eval mode here, restored after).
        collator: batches examples.
        eval_set: validation examples (each knows its module and image).
        cfg: the `training` config (`eval_batch_size`).

    Returns:
        module -> {loss, swapped_loss, gap} per answer token, and `all` over every module; the
        `all` loss is the token-weighted validation loss.
    """
    model.eval()
    indices = list(range(accelerator.process_index, len(eval_set), accelerator.num_processes))
    batch_size = int(cfg["eval_batch_size"])
    tally = GroundingTally(sorted({e.record.module for e in eval_set.examples}), accelerator.device)
    for start in range(0, len(indices), batch_size):
        items = [eval_set[(i, 0)] for i in indices[start:start + batch_size]]
        batch = {k: v.to(accelerator.device) for k, v in collator(items).items()}
        with accelerator.autocast():
            tally_batch(model, batch, [i["image_id"] for i in items], [i["module"] for i in items], tally)
    train_mode(model)
    tally.sums = accelerator.reduce(tally.sums, reduction="sum")
    return tally.summary()
