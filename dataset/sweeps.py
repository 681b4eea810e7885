"""Hydra multirun (`-m`) support for every entry script: a callback, registered in
`configs/default.yaml` under `hydra.callbacks`, that runs once before a sweep starts.

Two things go wrong in a plain Hydra sweep of this project:
- The sweeper resolves `hydra.sweep.dir` (`${paths.output_dir}/...`) before Hydra has set its
  global `HydraConfig`, so `${hydra:runtime.cwd}` inside `paths.root_dir` fails with an
  `InterpolationResolutionError`. The callback sets `HydraConfig` from the sweep's config first.
- Hydra writes the sweep's config to `<sweep dir>/multirun.yaml`, logs each job's overrides
  (`#0 : ... paths.openai_api_key=sk-...`) and builds each job's config from the command-line
  overrides, so a key given on the command line (the seed README's way) or written into a
  `paths` file would be stored and printed verbatim. The callback moves every literal secret
  value (a key named like `api_key`, `token`, `secret`, `password`) into this process's
  environment and leaves an `${oc.env:...}` reference in its place; each job resolves the
  reference in memory, and only the reference is ever written or logged.

A secret given as a sweep itself (`paths.openai_api_key=a,b`) is not supported and is refused.

A script whose points would otherwise write the same folder (the phantom's `dataset.phantom.output_dir`)
names such keys under `sweep_point_outputs` in its config (key -> sub-folder); in a sweep each
of them defaults to `<point folder>/<sub-folder>` unless the command line sets it.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import sys
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict, read_write

from dataset.secrets import REDACTED, is_secret_key

logger = logging.getLogger(__name__)
SECRET_ENV_PREFIX = "SPECIALIST_VLMS_SWEEP_SECRET_"


class SweepSecretError(ValueError):
    """A secret was given as a sweep over several values."""


def secret_env_var(key: str) -> str:
    """The environment variable that carries the secret of config key `key` through a sweep."""
    return SECRET_ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", key).upper()


def _reference(key: str, value: str) -> str:
    var = secret_env_var(key)
    os.environ[var] = value
    return "${oc.env:" + var + "}"


def _task_overrides(config: DictConfig) -> list[str]:
    # Unresolved: iterating the ListConfig would resolve the ${oc.env:...} references back.
    return list(OmegaConf.to_container(config.hydra.overrides.task, resolve=False))


def _hide_override_secrets(config: DictConfig) -> list[str]:
    """Replace secret values in `hydra.overrides.task` by env references; return the values."""
    parser = OverridesParser.create()
    lines = _task_overrides(config)
    hidden = []
    for index, line in enumerate(lines):
        override = parser.parse_override(line)
        key = override.key_or_group
        if not is_secret_key(key.rsplit(".", 1)[-1]) or override.value() is None or override.is_delete():
            continue
        if override.is_sweep_override():
            raise SweepSecretError(f"{key} is given as a sweep; a secret must be one value "
                                   "(better: set it in the environment, e.g. OPENAI_API_KEY)")
        value = str(override.value())
        if value.startswith("${"):
            continue  # already a reference (e.g. ${oc.env:OPENAI_API_KEY}), not a secret itself
        hidden.append(value)
        lines[index] = line.split("=", 1)[0] + "=" + _reference(key, value)
    config.hydra.overrides.task = lines
    return hidden


def _hide_config_secrets(node: Any, prefix: str = "") -> list[str]:
    """Replace literal secret values anywhere outside `hydra` by env references; return the values."""
    hidden = []
    if isinstance(node, DictConfig):
        for key in list(node.keys()):
            path = f"{prefix}{key}"
            if path == "hydra":
                continue
            if is_secret_key(str(key)) and not OmegaConf.is_interpolation(node, key):
                value = node._get_node(key)._value()  # noqa: SLF001 - the raw value, unresolved
                if isinstance(value, (str, int)) and str(value) not in ("", "???"):
                    hidden.append(str(value))
                    node[key] = _reference(path, str(value))
                continue
            hidden += _hide_config_secrets(node._get_node(key), f"{path}.")  # noqa: SLF001
    elif isinstance(node, ListConfig):
        for index in range(len(node)):
            hidden += _hide_config_secrets(node._get_node(index), f"{prefix}{index}.")  # noqa: SLF001
    return hidden


def add_point_outputs(config: DictConfig) -> list[str]:
    """Send each `sweep_point_outputs` key the command line leaves alone into the point's folder.

    Returns:
        The overrides added (e.g. `dataset.phantom.output_dir=${run_dir}/phantom`).
    """
    outputs = config.get("sweep_point_outputs") or {}
    parser = OverridesParser.create()
    lines = _task_overrides(config)
    given = {parser.parse_override(line).key_or_group for line in lines}
    added = [f"{key}=${{hydra:runtime.output_dir}}/{sub}" for key, sub in outputs.items() if key not in given]
    with read_write(config), open_dict(config):
        config.hydra.overrides.task = lines + added
    return added


def hide_sweep_secrets(config: DictConfig) -> int:
    """Move every literal secret of a sweep's config and command-line overrides into the
    environment, leaving references; scrub them from `hydra.job.override_dirname` too.

    Returns:
        The number of secret values hidden.
    """
    with read_write(config), open_dict(config):
        hidden = _hide_override_secrets(config) + _hide_config_secrets(config)
        # The raw string: resolving it could fail (`${run_dir}` needs HydraConfig) and would
        # turn the references back into secrets.
        dirname = str(config.hydra.job._get_node("override_dirname")._value() or "")  # noqa: SLF001
        for value in sorted(set(hidden), key=len, reverse=True):
            dirname = dirname.replace(value, REDACTED)
        config.hydra.job.override_dirname = dirname
    return len(set(hidden))


class SweepCallback(Callback):
    """Before a multirun: hide secrets, then make `${hydra:...}` resolvable for the sweeper."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # Hydra turns a callback's exception into a warning and sweeps on; a sweep whose secrets
        # could not be hidden must not start, so any failure here ends the process.
        try:
            hide_sweep_secrets(config)
            for line in add_point_outputs(config):
                logger.info("sweep: each point writes its own %s (set it on the command line to choose)", line)
            # A copy: set_config marks the node it is given read-only.
            HydraConfig.instance().set_config(copy.deepcopy(config))
        except Exception as err:  # noqa: BLE001 - see above
            sys.stderr.write(f"error: the sweep was not started: {type(err).__name__}: {err}\n")
            raise SystemExit(2) from None
