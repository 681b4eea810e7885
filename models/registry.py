"""The model registry: `configs/pretrained_models/<name>.yaml` entries resolved to local directories.

Resolution is offline: an entry names a local Hugging Face directory (`local`), a fresh build
(`new`), or an OpenAI-compatible vision endpoint (`openai`). Nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.model_files import IncompleteModelError, check_model_files

KINDS = ("new", "local", "openai")


class ModelNotFoundError(FileNotFoundError):
    """A registry entry's directory does not exist; the message names the command that makes it."""


@dataclass(frozen=True)
class ResolvedModel:
    """A registry entry after resolution.

    Attributes:
        name: registry name (e.g. `specialist_v5_192px`).
        kind: `new`, `local` or `openai`.
        path: the local Hugging Face directory (`local` only).
        options: the remaining entry fields (e.g. `model`, `base_url` for `openai`).
    """

    name: str
    kind: str
    path: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)


def resolve_model(entry_cfg: Mapping[str, Any]) -> ResolvedModel:
    """Resolve a `pretrained_models` config entry, offline.

    Args:
        entry_cfg: the entry (`name`, `kind`, `path` for local, `created_by`).

    Returns:
        The resolved model.

    Raises:
        ValueError: unknown kind or a `local` entry without a path.
        ModelNotFoundError: a `local` directory (or its config.json) is missing; the message
            includes the entry's `created_by` command.
        IncompleteModelError: the directory lacks weights (or they are truncated), the processor
            or the tokenizer; the message names each missing file and the fix.
    """
    name = str(entry_cfg.get("name", "?"))
    kind = str(entry_cfg.get("kind", "local"))
    options = {k: v for k, v in dict(entry_cfg).items() if k not in ("name", "kind", "path")}
    if kind not in KINDS:
        raise ValueError(f"pretrained_models={name}: kind {kind!r} is unknown; use one of {KINDS}")
    if kind != "local":
        return ResolvedModel(name=name, kind=kind, options=options)
    raw_path = entry_cfg.get("path")
    if raw_path in (None, "", "???"):
        raise ValueError(f"pretrained_models={name}: no path given; pass pretrained_models.path=/a/hf/model/dir")
    path = Path(str(raw_path)).expanduser()
    created_by = entry_cfg.get("created_by")
    fix = f"create it with `{created_by}`" if created_by else "point pretrained_models.path at a Hugging Face directory"
    if not (path / "config.json").is_file() and not any(path.glob("*.safetensors")):
        previous = sorted(path.parent.glob(f".{path.name}.previous-*")) if path.parent.is_dir() else []
        if previous:  # killed between the two renames of an atomic save (models.model_files)
            fix = f"a save was interrupted: the previous model is at {previous[-1]}; rename it to {path}, or {fix}"
        raise ModelNotFoundError(f"pretrained_models={name}: no model at {path} (config.json missing); {fix}")
    try:
        check_model_files(path, fix=fix)
    except IncompleteModelError as err:
        raise IncompleteModelError(f"pretrained_models={name}: {err}") from None
    return ResolvedModel(name=name, kind=kind, path=path, options=options)
