"""The model registry: `configs/pretrained_models/<name>.yaml` entries resolved and opened.

Resolution is offline: an entry names a local Hugging Face directory (`local`), a fresh build
(`new`), or an OpenAI-compatible vision endpoint (`openai`). Nothing is downloaded. Every consumer
opens a local entry's weights with `open_model`, and reads entries by name with
`load_registry_entry` (the only code that reads registry files outside Hydra's composition).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from dataset.errors import ConfigError
from models.model_files import IncompleteModelError, check_model_files
from models.quantization import load_vlm_8bit
from models.vlm import load_vlm

KINDS = ("new", "local", "openai")
REGISTRY_DIR = Path(__file__).resolve().parents[1] / "configs" / "pretrained_models"


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


def registry_names(registry_dir: str | Path | None = None, kind: str | None = None) -> list[str]:
    """The names of the registry's entries, sorted by file name; only those of `kind` if given.

    Args:
        registry_dir: the folder of entries; None = the project's `configs/pretrained_models`.
        kind: `new`, `local` or `openai`; None = every entry.
    """
    names = []
    for path in sorted(Path(registry_dir or REGISTRY_DIR).glob("*.yaml")):
        entry = OmegaConf.load(path)
        if kind is None or str(entry.get("kind", "local")) == kind:
            names.append(str(entry.get("name", path.stem)))
    return names


def model_names(cfg: Mapping[str, Any]) -> list[str]:
    """The registry names a run asks for: `models` (a list) or else the selected `pretrained_models`."""
    names = cfg.get("models")
    if names:
        return [str(n) for n in (names if not isinstance(names, str) else [names])]
    return [str(cfg["pretrained_models"]["name"])]


def load_registry_entry(name: str, cfg: DictConfig) -> DictConfig:
    """The registry entry `name`, with `${paths.*}` resolved against the run's config.

    The entry selected on the command line (`pretrained_models=<name>`) is taken from `cfg` itself,
    so overrides such as `pretrained_models.path=...` apply; any other is read from
    `<registry_dir>/<name>.yaml` (`registry_dir`: null = the project's `configs/pretrained_models`).

    Args:
        name: a registry name, e.g. `specialist_v5_192px`.
        cfg: the run's composed config (`paths`, `pretrained_models`, optionally `registry_dir`).

    Raises:
        FileNotFoundError: no `configs/pretrained_models/<name>.yaml`.
    """
    selected = cfg.get("pretrained_models")
    if selected is not None and selected.get("name") == name:
        return selected
    registry_dir = Path(cfg.get("registry_dir") or REGISTRY_DIR)
    path = registry_dir / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in registry_dir.glob("*.yaml")))
        raise FileNotFoundError(f"no registry entry {path}; known models: {known}")
    merged = OmegaConf.merge({"paths": cfg.paths}, {"entry": OmegaConf.load(path)})
    return merged.entry


def open_model(model: str | Mapping[str, Any] | ResolvedModel, cfg: DictConfig | None = None, *,
               device: str | torch.device | None = None, load_in_8bit: bool = False, needs: str = "this run"):
    """Open a registry model's weights: the one way training, evaluation, saliency, the demos and
    the vision probe load a model.

    Args:
        model: a registry name (looked up with `load_registry_entry`, so `cfg` is needed), an entry
            config, or an already resolved entry.
        cfg: the run's composed config; only read to look up a name.
        device: where to put the model; None = CUDA when available, else CPU (`models.vlm.load_vlm`).
        load_in_8bit: load the language model in 8 bits on CUDA (`models.quantization.load_vlm_8bit`,
            `training.policy.load_in_8bit`); `device` is then ignored.
        needs: what needs the weights, for the error message (e.g. `Grad-CAM`).

    Returns:
        (model, processor), the model in eval mode in the checkpoint's dtype.

    Raises:
        ConfigError: the entry is not a local directory (an API endpoint or a fresh build).
        ModelNotFoundError: the directory is missing (the message names the command that makes it).
        IncompleteModelError: weights, processor or tokenizer files are missing or truncated.
    """
    if isinstance(model, str):
        if cfg is None:
            raise TypeError(f"open_model({model!r}): a registry name needs the run's config to look it up")
        model = load_registry_entry(model, cfg)
    resolved = model if isinstance(model, ResolvedModel) else resolve_model(model)
    if resolved.kind != "local":
        what = "an API endpoint" if resolved.kind == "openai" else "a fresh untrained build"
        raise ConfigError(f"pretrained_models={resolved.name} is {what} ({resolved.kind}); {needs} needs a "
                          "local model (pick a registry entry of kind local, e.g. "
                          "pretrained_models=specialist_v5_192px)")
    if load_in_8bit:
        from transformers import AutoProcessor

        return load_vlm_8bit(resolved.path), AutoProcessor.from_pretrained(resolved.path)
    return load_vlm(resolved.path, device=device)
