"""Curriculum data for training: QA records joined to scans and a weighted epoch plan.

Reads QA records as files (`dataset.qa_records`) and the annotation table
(`dataset.annotations`); it never imports the curriculum generator. Every random choice (module
weighting, order, augmentation) is a pure function of (seed, epoch, index), so a run resumed from
a checkpoint sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from torch.utils.data import Dataset, Sampler

from dataset.images import load_scan
from dataset.qa_records import QARecord, read_records
from dataset.transforms import ScanTransform

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingExample:
    """One QA record joined to its image file."""

    record: QARecord
    image_file: str


def store_records_path(curriculum_dir: str | Path, name: str) -> Path:
    """The records file of curriculum store `name` under `${paths.curriculum_dir}`."""
    return Path(curriculum_dir) / name / "records.jsonl"


def load_curriculum(curriculum_dir: str | Path, curricula: Mapping[str, float]) -> dict[str, list[QARecord]]:
    """Read the records of each named curriculum store.

    Args:
        curriculum_dir: `${paths.curriculum_dir}`.
        curricula: store folder name -> sampling weight.

    Returns:
        Store name -> its records.

    Raises:
        FileNotFoundError: a store is missing; the message names the generation command.
    """
    stores = {}
    for name in curricula:
        path = store_records_path(curriculum_dir, name)
        if not path.is_file():
            script = "generate_curriculum_part1.py" if "tabular" in name else "generate_curriculum_part2.py"
            raise FileNotFoundError(
                f"curriculum store {path} not found; generate it with `python run/{script} dataset=retina "
                f"model/language_model=rules dataset/task/curriculum={name}` or fix paths.curriculum_dir")
        stores[name] = read_records(path)
    return stores


def require_training_records(stores: Mapping[str, list[QARecord]], table: pd.DataFrame,
                             curriculum_dir: str | Path) -> None:
    """Stop before any training when no curriculum store has a record of a training-split image.

    Runs before vision pretraining and model loading, so an empty curriculum costs seconds, not
    hundreds of steps.

    Raises:
        ConfigError: every store is empty or names no training image; the message gives each
            store's count and the command that generates it.
    """
    from dataset.errors import ConfigError

    train_ids = set(table.loc[table["split"] == "train", "image_id"].astype(str)) if "split" in table.columns \
        else set(table["image_id"].astype(str))
    counts = {name: sum(r.image_id in train_ids for r in records) for name, records in stores.items()}
    for name, count in counts.items():
        if count == 0 and len(counts) > 1:
            logger.warning("curriculum store %s has no records of training images (%d records in all)",
                           name, len(stores[name]))
    if not any(counts.values()):
        detail = ", ".join(f"{name}: {len(stores[name])} records, {counts[name]} of training images"
                           for name in counts) or "no stores named"
        raise ConfigError(
            f"nothing to train on: the curriculum in {curriculum_dir} has no records of training-split "
            f"images ({detail}); generate it first (python run/generate_curriculum_part1.py / "
            "generate_curriculum_part2.py with the same dataset and paths), or check dataset.task.curricula "
            "and that the annotation table has a 'train' split")


def join_split(stores: Mapping[str, list[QARecord]], table: pd.DataFrame, split: str) -> dict[str, list[TrainingExample]]:
    """Keep the records whose image is in `split`, joined to the image file.

    Records naming an image absent from the table are counted and reported, never silently kept.
    """
    files = dict(zip(table["image_id"].astype(str), table["image_file"]))
    in_split = set(table.loc[table["split"] == split, "image_id"].astype(str))
    joined: dict[str, list[TrainingExample]] = {}
    for name, records in stores.items():
        unknown = [r.image_id for r in records if r.image_id not in files]
        if unknown:
            logger.warning("%s: %d records name images missing from the annotation table (e.g. %s); "
                           "they are left out", name, len(unknown), unknown[:3])
        joined[name] = [TrainingExample(r, files[r.image_id]) for r in records if r.image_id in in_split]
        logger.info("%s: %d %s records", name, len(joined[name]), split)
    return joined


class EpochPlan:
    """The weighted, shuffled order of examples in each epoch.

    A store of n records with weight w contributes round(w * n) draws per epoch (w > 1 repeats
    records, w < 1 takes a different random subset each epoch).

    With `lengths`, examples of similar length are grouped into the same global batch (within
    windows of `group_batches` batches, then the batches are shuffled), so a batch is not padded to
    one long report: part 2 mixes 10-token answers with 200-token reports.

    With `record_weights`, a store whose records are not all weighted 1 draws its round(w * n)
    records with replacement, each with probability proportional to its weight (`stage_weights`).

    Args:
        sizes: records per store, in store order.
        weights: sampling weight per store.
        seed: base seed.
        lengths: approximate length of each example (e.g. characters), or None for no grouping.
        batch_size: global batch size the grouping aims at.
        group_batches: batches per sorting window.
        record_weights: a weight per example (all stores, in order), or None: every record alike.
    """

    def __init__(self, sizes: Sequence[int], weights: Sequence[float], seed: int,
                 lengths: Sequence[int] | None = None, batch_size: int = 1, group_batches: int = 32,
                 record_weights: Sequence[float] | None = None):
        self.offsets = np.cumsum([0, *sizes])[:-1]
        self.sizes = list(sizes)
        self.weights = list(weights)
        self.record_weights = np.asarray(record_weights, dtype=float) if record_weights is not None else None
        self.seed = seed
        self.lengths = np.asarray(lengths) if lengths is not None else None
        self.batch_size = batch_size
        self.group_batches = group_batches
        self.epoch_length = int(sum(round(w * n) for n, w in zip(sizes, weights)))
        if self.epoch_length == 0:
            raise ValueError("the curriculum has no training examples (all stores empty or weighted 0)")

    def order(self, epoch: int) -> np.ndarray:
        """Global example indices of one epoch."""
        rng = np.random.default_rng([self.seed, epoch])
        parts = []
        for offset, size, weight in zip(self.offsets, self.sizes, self.weights):
            draws = int(round(weight * size))
            if draws == 0:
                continue
            store = self.record_weights[offset:offset + size] if self.record_weights is not None else None
            if store is not None and not np.all(store == 1.0):
                parts.append(offset + rng.choice(size, draws, replace=True, p=store / store.sum()))
                continue
            full, rest = divmod(draws, size)
            picks = [np.arange(size)] * full + [rng.permutation(size)[:rest]]
            parts.append(offset + np.concatenate(picks))
        order = rng.permutation(np.concatenate(parts))
        if self.lengths is None or self.batch_size <= 1:
            return order
        return self._group_by_length(order, rng)

    def _group_by_length(self, order: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        window = self.batch_size * self.group_batches
        batches = []
        for start in range(0, len(order), window):
            chunk = order[start:start + window]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches.extend(chunk[i:i + self.batch_size] for i in range(0, len(chunk), self.batch_size))
        full = [b for b in batches if len(b) == self.batch_size]
        ragged = [b for b in batches if len(b) != self.batch_size]
        shuffled = [full[i] for i in rng.permutation(len(full))]
        return np.concatenate(shuffled + ragged)


class PlannedBatchSampler(Sampler):
    """Yields this process's micro-batches of (index, epoch) keys, from micro-batch `start` on.

    Global micro-batch b covers `batch_size * num_processes` examples of the plan; process k takes
    its slice. The stream runs over epochs without end; the loop decides when to stop.
    """

    def __init__(self, plan: EpochPlan, batch_size: int, num_processes: int = 1, process_index: int = 0,
                 start: int = 0):
        self.plan = plan
        self.batch_size = batch_size
        self.num_processes = num_processes
        self.process_index = process_index
        self.start = start
        self.batches_per_epoch = plan.epoch_length // (batch_size * num_processes)
        if self.batches_per_epoch == 0:
            raise ValueError(f"an epoch has {plan.epoch_length} examples, fewer than one global batch of "
                             f"{batch_size * num_processes}; lower training.batch_size")

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        batch = self.start
        while True:
            epoch, position = divmod(batch, self.batches_per_epoch)
            order = self.plan.order(epoch)
            global_size = self.batch_size * self.num_processes
            while position < self.batches_per_epoch:
                first = position * global_size + self.process_index * self.batch_size
                yield [(int(i), epoch) for i in order[first:first + self.batch_size]]
                position += 1
                batch += 1

    def __len__(self) -> int:  # an endless stream; DataLoader only needs a number
        return 2**31 - 1


class CurriculumDataset(Dataset):
    """Examples keyed by (index, epoch): the scan (transformed, RGB) with its question and answer.

    Args:
        examples: joined examples (concatenated over stores, in plan order).
        transform: scan transform; augmentation draws come from a generator seeded by
            (`seed`, epoch, index).
        seed: base seed.
    """

    def __init__(self, examples: Sequence[TrainingExample], transform: ScanTransform, seed: int = 0):
        self.examples = list(examples)
        self.transform = transform
        self.seed = seed

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, key) -> dict:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        example = self.examples[index]
        rng = np.random.default_rng([self.seed, epoch, index])
        image = self.transform(load_scan(example.image_file), rng).convert("RGB")
        return {"image": image, "question": example.record.question, "answer": example.record.answer,
                "record_id": example.record.record_id, "image_id": example.record.image_id,
                "module": example.record.module}


def flatten(joined: Mapping[str, list[TrainingExample]], weights: Mapping[str, float]) -> tuple[list[TrainingExample],
                                                                                                list[int], list[float]]:
    """Concatenate stores in a fixed order; returns (examples, sizes, weights) for an EpochPlan."""
    names = sorted(joined)
    examples = [e for name in names for e in joined[name]]
    return examples, [len(joined[n]) for n in names], [float(weights[n]) for n in names]


def stage_weights(examples: Sequence[TrainingExample], sizes: Sequence[int], stage_of: Mapping[str, str],
                  balance: float) -> list[float]:
    """A sampling weight per example that draws scans of rarer stages more often (`training.stage_balance`).

    Within each store, a record of a scan whose stage has share p of the store's records weighs
    (largest share / p) ** balance, scaled so the store's weights average 1 (the store's draws per
    epoch are unchanged). 0 weighs every record 1; 1 gives every stage the same share of draws.

    Args:
        examples: every store's examples, concatenated in store order (`flatten`).
        sizes: records per store.
        stage_of: image id -> stage.
        balance: the exponent (>= 0).
    """
    weights: list[float] = []
    start = 0
    for size in sizes:
        stages = [stage_of[e.record.image_id] for e in examples[start:start + size]]
        counts = Counter(stages)
        raw = np.array([(max(counts.values()) / counts[stage]) ** balance for stage in stages])
        weights.extend((raw * size / raw.sum()).tolist() if size else [])
        start += size
    return weights
