"""Is a model folder complete? Checks the files a load needs, before a long run starts, and saves
a model atomically, so an interrupted save never leaves a folder that looks complete.

A folder counts as complete when it has `config.json`, safetensors weights whose headers are
readable and whose sizes match them (a single `model.safetensors` or every shard its index names),
and, where asked, the processor's and the tokenizer's files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from dataset.errors import MissingInputError

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")


class IncompleteModelError(MissingInputError):
    """A model folder lacks files a load needs, or its weights are damaged; names what and the fix."""


def weight_files(path: Path) -> list[Path]:
    """The safetensors files a folder's weights are in (shards from the index, else the single file).

    Raises:
        IncompleteModelError: no safetensors weights, an unreadable index, or a missing shard.
    """
    index = path / WEIGHTS_INDEX
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (ValueError, KeyError, TypeError) as err:
            raise IncompleteModelError(f"{index} is not a readable safetensors index ({err})") from None
        missing = [s for s in shards if not (path / s).is_file()]
        if missing:
            raise IncompleteModelError(f"{path} lacks weight shard(s) {', '.join(missing)} named in {index.name}")
        return [path / s for s in shards]
    if (path / WEIGHTS_FILE).is_file():
        return [path / WEIGHTS_FILE]
    others = sorted(p.name for p in path.glob("*.bin")) + sorted(p.name for p in path.glob("*.safetensors"))
    hint = f" (found {', '.join(others)}: convert to {WEIGHTS_FILE})" if others else ""
    raise IncompleteModelError(f"{path} has no {WEIGHTS_FILE} or {WEIGHTS_INDEX}{hint}")


def weights_identity(path: Path) -> str:
    """A key for the weights in a model folder: its config and each weight file's name, size and
    modification time (rewritten weights get a new key). Cheap for a 16 GB folder as for a 16 MB
    one; a copy that does not keep times gets a new key, which costs a recomputation, never a
    wrong reuse.

    Raises:
        IncompleteModelError: the folder has no safetensors weights (see `weight_files`).
    """
    digest = hashlib.sha256()
    config = path / "config.json"
    digest.update(config.read_bytes() if config.is_file() else b"")
    for weights in weight_files(path):
        stat = weights.stat()
        digest.update(f"\x1f{weights.name}\x1f{stat.st_size}\x1f{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def check_safetensors(file: Path) -> None:
    """Read a safetensors header and check the file holds every byte the header promises.

    Raises:
        IncompleteModelError: an unreadable header or a truncated file.
    """
    from safetensors import safe_open

    size = file.stat().st_size
    try:
        with file.open("rb") as handle:
            header_len = int.from_bytes(handle.read(8), "little")
            if header_len <= 0 or 8 + header_len > size:
                raise ValueError(f"header of {header_len} bytes does not fit in {size} bytes")
            header = json.loads(handle.read(header_len))
        end = max((int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__"), default=0)
        if 8 + header_len + end != size:
            raise ValueError(f"the header promises {8 + header_len + end} bytes, the file has {size}")
        with safe_open(str(file), framework="pt"):
            pass
    except Exception as err:  # noqa: BLE001 - any failure here means the file cannot be loaded
        raise IncompleteModelError(f"weights file {file} is damaged or truncated ({err}); save or download the "
                                   "model again") from None


def check_model_files(path: str | Path, processor: bool = True, tokenizer: bool = True, fix: str = "") -> Path:
    """Check a Hugging Face model folder holds everything a load needs.

    Args:
        path: the folder.
        processor: require the image processor's config (a VLM or a vision tower).
        tokenizer: require tokenizer files (a VLM or an LLM).
        fix: how to make or get the model, appended to the error message.

    Returns:
        The folder as a Path.

    Raises:
        IncompleteModelError: the folder or a needed file is missing, or the weights are damaged;
            the message lists every missing item.
    """
    path = Path(path).expanduser()
    suffix = f"; {fix}" if fix else ""
    if not path.is_dir():
        raise IncompleteModelError(f"no model folder at {path}{suffix}")
    missing = [] if (path / "config.json").is_file() else ["config.json"]
    if processor and not any((path / f).is_file() for f in PROCESSOR_FILES):
        missing.append(f"the image processor ({' or '.join(PROCESSOR_FILES)})")
    if tokenizer and not any((path / f).is_file() for f in TOKENIZER_FILES):
        missing.append(f"the tokenizer ({' or '.join(TOKENIZER_FILES)})")
    try:
        files = weight_files(path)
    except IncompleteModelError as err:
        missing.append(f"the weights: {err}")
        files = []
    if missing:
        raise IncompleteModelError(f"the model folder {path} is incomplete: missing {'; '.join(missing)}{suffix}")
    for file in files:
        check_safetensors(file)
    return path


@contextmanager
def atomic_folder(path: str | Path, check: Callable[[Path], object] | None = None) -> Iterator[Path]:
    """Write a folder under a temporary sibling name, then put it in place in one rename.

    The previous folder at `path` is kept until the new one is complete (and passes `check`); an
    interrupted save leaves only a hidden `.<name>.saving-*` sibling, never a half-written `path`.

    Args:
        path: the final folder.
        check: called with the temporary folder before it replaces `path` (raise to abort).

    Yields:
        The temporary folder to write into.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.parent / f".{path.name}.saving-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        if check is not None:
            check(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    previous = path.parent / f".{path.name}.previous-{os.getpid()}"
    if path.exists():
        os.replace(path, previous)
    os.replace(staging, path)
    shutil.rmtree(previous, ignore_errors=True)
    logger.info("wrote %s", path)
