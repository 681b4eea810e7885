"""Every shipped Hydra config composes and resolves with no user-written file."""

from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from omegaconf.errors import MissingMandatoryValue

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
NOT_HYDRA = {"accelerate"}  # accelerate launch configs, not Hydra groups
GROUP_ROOTS = sorted(p for p in CONFIGS.iterdir() if p.is_dir() and p.name not in NOT_HYDRA)
PRIMARY = sorted(p.stem for p in CONFIGS.glob("*.yaml"))
# Folders of pieces that other configs pull in through their defaults lists (`<folder>/<name>@<key>`),
# never selected as a group option themselves.
PIECES = {"saliency", "model/language_model/base", "dataset/task/prompts"}
# Global-package groups, composed with every entry config elsewhere (tests/test_debug_runs.py).
GLOBAL = {"debug"}


def _group_options():
    for root in GROUP_ROOTS:
        for path in sorted(root.rglob("*.yaml")):
            group = path.parent.relative_to(CONFIGS).as_posix()
            if group not in PIECES | GLOBAL:
                yield group, path.stem


def _pieces():
    for folder in sorted(PIECES):
        for path in sorted((CONFIGS / folder).glob("*.yaml")):
            yield folder, path.stem


def _task_with_curriculum() -> str:
    for path in sorted((CONFIGS / "dataset" / "task").glob("*.yaml")):
        defaults = (yaml.safe_load(path.read_text()) or {}).get("defaults", [])
        if any(isinstance(d, dict) and "curriculum" in d for d in defaults):
            return path.stem
    pytest.skip("no task config selects a curriculum yet")


def _compose(config_name, overrides, tmp_path, throw_on_missing=False):
    base = [f"paths.root_dir={CONFIGS.parent}", f"run_dir={tmp_path}"]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=base + overrides)
    # Resolve everything (interpolations included); `???` values a user must give may stay open.
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=throw_on_missing)


@pytest.mark.parametrize("config_name", PRIMARY)
def test_primary_config_composes(config_name, tmp_path):
    cfg = _compose(config_name, [], tmp_path)
    assert cfg["paths"]["data_dir"].startswith(str(CONFIGS.parent))


@pytest.mark.parametrize("group,option", list(_group_options()))
def test_group_option_composes(group, option, tmp_path):
    overrides = [f"{group}={option}"]
    if group == "dataset/task/curriculum":
        overrides.insert(0, f"dataset/task={_task_with_curriculum()}")
    cfg = _compose("default", overrides, tmp_path)
    node = cfg
    for key in group.split("/"):
        node = node[key]
    assert isinstance(node, dict)


def test_paths_template_composes_like_the_seed_readme(tmp_path):
    cfg = _compose("default", ["paths=template"], tmp_path)
    assert cfg["paths"]["annotations_file"].endswith("annotations.csv")


def _pulled_in() -> set[str]:
    """The `<folder>/<name>` of every plain config (not a group choice) in any defaults list."""
    names = set()
    for path in CONFIGS.rglob("*.yaml"):
        if path.parent.name not in NOT_HYDRA:
            defaults = (yaml.safe_load(path.read_text()) or {}).get("defaults", [])
            names |= {entry.split("@")[0].strip("/") for entry in defaults if isinstance(entry, str)}
    return names


@pytest.mark.parametrize("folder,name", list(_pieces()))
def test_every_piece_is_pulled_in_by_a_config(folder, name):
    tail = f"{folder.rsplit('/', 1)[-1]}/{name}"
    assert any(used.endswith(tail) for used in _pulled_in()), f"configs/{folder}/{name}.yaml is used nowhere"


def test_the_openai_base_is_no_model_to_select(tmp_path):
    with pytest.raises(MissingMandatoryValue, match="model.language_model.name"):
        _compose("default", ["model/language_model=base/openai"], tmp_path, throw_on_missing=True)
