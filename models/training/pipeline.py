"""Curriculum training, config in and results out: what `run/vision_language_pretraining.py` calls.

Outline (torchtune-style, top to bottom): set up the model, the data, the accelerator; run the
loop; save the model where the registry looks for the task's output; report.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DistributedDataParallelKwargs, ProjectConfiguration
from omegaconf import DictConfig, OmegaConf

from dataset.annotations import load_annotations
from dataset.images import check_scan_sizes
from dataset.qa_records import read_records
from dataset.runtime import prepare_run
from dataset.transforms import build_scan_transform
from models.model_card import write_training_card
from models.model_files import IncompleteModelError, weights_identity
from dataset.errors import ConfigError
from models.policies import apply_trainable_policy, check_8bit_policy, count_parameters, unwrap_for_saving
from models.precision import resolve_mixed_precision
from models.quantization import quantize_vlm_8bit
from models.registry import open_model, resolve_model
from models.training.checkpoint import config_fingerprint, find_resumable
from models.training.collate import QACollator, filter_examples
from models.training.data import (CurriculumDataset, EpochPlan, flatten, join_split, load_curriculum,
                                  require_training_records, stage_weights, store_records_path)
from models.training.loop import run_training_loop
from models.training.settings import check_training_settings
from models.training.trackers import build_trackers
from models.training.vision_pretraining import maybe_pretrain_vision
from models.vlm import build_vlm, check_image_token_count, save_vlm

logger = logging.getLogger(__name__)


def run_vision_language_pretraining(cfg: DictConfig) -> dict[str, Any]:
    """Train the registry model `cfg.pretrained_models` on the task's curricula and save the result.

    Args:
        cfg: composed `configs/vision_language_pretraining.yaml`.

    Returns:
        Summary: output model path, steps, loss curves, wall time, parameter counts.

    Raises:
        FileNotFoundError: a curriculum store or the starting model is missing (message says how
            to make it).
    """
    check_training_settings(cfg.training)
    run_dir = prepare_run(cfg)
    task, train_cfg = cfg.dataset.task, cfg.training
    output_model = str(task.output_model)  # first: a task that is not a training task fails here
    fingerprint = _fingerprint(cfg)
    checkpoint_dir = Path(train_cfg.checkpoint_dir) / output_model / fingerprint
    accelerator = _build_accelerator(train_cfg, run_dir)

    table = load_annotations(cfg.dataset.annotations_file, cfg.dataset.images_dir)
    curricula = dict(task.curricula)
    stores = load_curriculum(cfg.paths.curriculum_dir, curricula)
    require_training_records(stores, table, cfg.paths.curriculum_dir)  # before any (vision) training
    check_scan_sizes(table["image_file"], table["image_id"].astype(str), int(cfg.dataset.crop_size))
    model, processor = _starting_model(cfg, table, checkpoint_dir, accelerator)
    check_image_token_count(model, processor)
    model.to(accelerator.device)  # vision pretraining runs before accelerate prepares the model
    vision_summary = maybe_pretrain_vision(cfg, model, processor, table,  # no-op unless `new` (see its doc)
                                           resuming=bool(train_cfg.resume and find_resumable(checkpoint_dir, fingerprint)))
    if train_cfg.gradient_checkpointing:
        model.model.language_model.gradient_checkpointing_enable({"use_reentrant": False})
    model = apply_trainable_policy(model, train_cfg.policy)
    trainable, total = count_parameters(model)

    collator = QACollator(processor, int(train_cfg.max_length))
    image_size = (int(cfg.dataset.image_height), int(cfg.dataset.image_width))
    joined = {name: filter_examples(examples, collator)
              for name, examples in join_split(stores, table, "train").items()}
    train_examples, sizes, weights = flatten(joined, curricula)
    lengths = [len(e.record.question) + len(e.record.answer) for e in train_examples]
    balance = float(train_cfg.get("stage_balance") or 0.0)
    record_weights = None
    if balance:
        stage_of = dict(zip(table["image_id"].astype(str), table["stage"].astype(str)))
        record_weights = stage_weights(train_examples, sizes, stage_of, balance)
    plan = EpochPlan(sizes, weights, seed=int(cfg.seed), lengths=lengths if train_cfg.group_by_length else None,
                     batch_size=int(train_cfg.batch_size) * accelerator.num_processes, record_weights=record_weights)
    train_set = CurriculumDataset(train_examples, build_scan_transform(
        int(cfg.dataset.crop_size), OmegaConf.to_container(cfg.dataset.augmentation), image_size), int(cfg.seed))
    eval_set = _validation_set(stores, table, collator, cfg, image_size)

    accelerator.init_trackers("vision_language_pretraining")
    result = run_training_loop(accelerator, model, collator, train_set, plan, eval_set, train_cfg,
                               checkpoint_dir, fingerprint)

    output_dir = Path(cfg.paths.model_dir) / task.output_model
    if accelerator.is_main_process:
        save_vlm(unwrap_for_saving(accelerator.unwrap_model(model)), processor, output_dir)
    accelerator.wait_for_everyone()
    accelerator.end_training()  # last: it also tears down the process group
    summary = {"output_model": str(output_dir), "steps": result.steps, "resumed_from_step": result.start_step,
               "train_loss": result.train_losses, "eval_loss": result.eval_losses,
               "grounding": [{"step": step, **gaps} for step, gaps in result.grounding],
               "wall_time_s": round(result.wall_time_s, 1), "trainable_parameters": trainable,
               "total_parameters": total, "train_examples": len(train_examples),
               "eval_examples": len(eval_set) if eval_set is not None else 0,
               "truncated_answers": collator.truncated_answers, "vision_pretraining": vision_summary,
               "mixed_precision": accelerator.mixed_precision}
    if accelerator.is_main_process:
        (run_dir / "training_summary.json").write_text(json.dumps(summary, indent=2))
        write_training_card(output_dir, cfg, table, summary, {name: len(e) for name, e in joined.items()})
    logger.info("saved %s after %d steps (%.0f s)", output_dir, result.steps, result.wall_time_s)
    return summary


def _fingerprint(cfg) -> str:
    """Hash of everything that shapes the trained weights (not logging or resume settings): the
    configuration, the content of the curriculum stores the task names and the starting model's
    weights, so a checkpoint is never resumed over a regenerated curriculum or a retrained model."""
    values = {key: OmegaConf.to_container(cfg[key], resolve=True)
              for key in ("model", "training", "pretrained_models")}
    for key in ("resume", "checkpoint_dir", "keep_checkpoints", "log_with", "log_every", "num_workers"):
        values["training"].pop(key, None)
    # The precision the weights were trained in, not the setting: `auto` differs between machines.
    values["training"]["mixed_precision"] = resolve_mixed_precision(values["training"].get("mixed_precision", "no"))
    values.pop("model")["language_model"] = None  # the curriculum LLM does not touch training
    values["vlm"] = {k: OmegaConf.to_container(cfg.model[k], resolve=True)
                     for k in ("vision_encoder", "adapter", "text_decoder")}
    values["task"] = OmegaConf.to_container(cfg.dataset, resolve=True)
    values["seed"] = int(cfg.seed)
    values["curriculum_data"] = {name: _file_digest(store_records_path(cfg.paths.curriculum_dir, name))
                                 for name in cfg.dataset.task.curricula}
    values["starting_weights"] = _starting_weights(cfg)
    return config_fingerprint(values)


def _starting_weights(cfg) -> str | None:
    """`weights_identity` of a local starting model (None for `new`, or a folder that loading
    will report as missing or incomplete)."""
    start = resolve_model(cfg.pretrained_models)
    if start.kind != "local" or not start.path:
        return None
    try:
        return weights_identity(Path(start.path))
    except (IncompleteModelError, OSError):
        return None


def _file_digest(path: Path) -> str | None:
    """SHA-1 of a file's bytes (None when it does not exist; loading then names what is missing)."""
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha1").hexdigest()


def _build_accelerator(train_cfg, run_dir: Path) -> Accelerator:
    # accelerate keeps one precision setting per process; a second run in the same process (a
    # notebook, the test suite) may ask for another, so start from a clean accelerator state. The
    # process group (PartialState) is kept.
    AcceleratorState._reset_state(reset_partial_state=False)
    # Frozen towers (adapter/LoRA policies) leave parameters without gradients under DDP.
    ddp = DistributedDataParallelKwargs(find_unused_parameters=train_cfg.policy.name != "full")
    # cpu=True on machines without CUDA makes torchrun-launched processes (`accelerate launch
    # --multi_gpu`) form a gloo process group instead of running as independent copies.
    precision = resolve_mixed_precision(train_cfg.mixed_precision)
    logger.info("mixed precision: %s (training.mixed_precision=%s)", precision, train_cfg.mixed_precision)
    return Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=precision, kwargs_handlers=[ddp],
                       log_with=build_trackers(list(train_cfg.log_with), run_dir),
                       project_config=ProjectConfiguration(project_dir=str(run_dir), logging_dir=str(run_dir)))


def _starting_model(cfg, table, checkpoint_dir: Path, accelerator):
    """The registry's starting model; for `new`, a fresh build whose tokenizer is trained on the
    curriculum text (or reloaded from an interrupted run's checkpoint folder, so resume is exact)."""
    entry = resolve_model(cfg.pretrained_models)
    eight_bit = bool(cfg.training.policy.load_in_8bit)
    if eight_bit:  # before any build or vision pretraining: no CUDA, no bitsandbytes or `full` stop here
        check_8bit_policy(cfg.training.policy)
    if entry.kind == "local":
        model, processor = open_model(entry, device="cpu", load_in_8bit=eight_bit)
        return model.train(), processor
    if entry.kind != "new":
        raise ConfigError(f"pretrained_models={entry.name} is an API endpoint ({entry.kind}); it cannot be "
                          "trained: start from pretrained_models=new or a trained local model")
    saved = checkpoint_dir / "processor"
    torch.manual_seed(int(cfg.seed))
    if (saved / "tokenizer.json").is_file():
        from transformers import AutoProcessor

        processor = AutoProcessor.from_pretrained(saved)
        model, _ = build_vlm(cfg.model, [], tokenizer=processor.tokenizer)
        return (quantize_vlm_8bit(model, processor) if eight_bit else model), processor
    model, processor = build_vlm(cfg.model, tokenizer_texts(cfg.paths.curriculum_dir, table,
                                                            cfg.dataset.task.curricula))
    if accelerator.is_main_process:
        processor.save_pretrained(saved)
    accelerator.wait_for_everyone()
    return (quantize_vlm_8bit(model, processor) if eight_bit else model), processor


def tokenizer_texts(curriculum_dir: str | Path, table, stores: Iterable[str]) -> list[str]:
    """Text for the tiny tokenizer: the questions and answers of the task's own curriculum stores
    and the training split's reports (the test split's words stay out).

    Only the named stores: other stores that happen to sit in the curriculum folder (the demo
    curriculum, say) would change the vocabulary, and with it every weight the same seed trains
    (generating the demo curriculum changed 88 of 1,502 token ids).
    """
    texts = []
    for name in sorted(stores):
        for record in read_records(Path(curriculum_dir) / name / "records.jsonl"):
            texts.extend([record.question, record.answer])
    if "report" in table.columns:
        train = table[table["split"] == "train"] if "split" in table.columns else table
        texts.extend(str(r) for r in train["report"] if str(r))
    logger.info("training the tokenizer on %d texts", len(texts))
    return texts


def _validation_set(stores, table, collator, cfg, image_size):
    max_samples = int(cfg.training.max_eval_samples)
    if max_samples <= 0 or "split" not in table.columns or not (table["split"] == "validation").any():
        logger.warning("no validation split: validation loss is not computed")
        return None
    joined = {name: filter_examples(examples, collator)
              for name, examples in join_split(stores, table, "validation").items()}
    joined = {name: examples for name, examples in joined.items() if examples}
    if not joined:
        return None
    # A fixed, seeded subset keeps evaluation cheap and comparable across steps; it takes the
    # same number from every store, so each module's image-reliance gap rests on enough examples
    # (part 2's stores differ 25-fold in size).
    rng = np.random.default_rng(int(cfg.seed))
    per_store = max(1, max_samples // len(joined))
    chosen = []
    for name in sorted(joined):
        examples = joined[name]
        chosen += [examples[i] for i in sorted(rng.permutation(len(examples))[:per_store])]
    return CurriculumDataset(chosen, build_scan_transform(int(cfg.dataset.crop_size), None, image_size),
                             int(cfg.seed))
