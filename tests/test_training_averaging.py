"""Weight averaging over the tail of training (`training.average_last`): the saved weights are the
mean of the last steps' weights, and a resumed run averages the same steps."""

import shutil
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from safetensors.torch import load_file
from torch import nn

from dataset.errors import ConfigError
from models.training import run_vision_language_pretraining
from models.training.averaging import TailAverage
from support.training import training_overrides, write_training_data

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_tail_average_is_the_mean_of_the_last_steps_and_survives_a_state_round_trip():
    model = nn.Linear(3, 2)
    model.bias.requires_grad_(False)  # frozen parameters are left alone
    average = TailAverage(model, max_steps=5, fraction=0.6)  # steps 3, 4 and 5
    seen = []
    for step in range(1, 6):
        with torch.no_grad():
            model.weight.add_(float(step))
        seen.append(model.weight.detach().clone())
        average.update(step)
    restored = TailAverage(model, max_steps=5, fraction=0.6)
    restored.load_state_dict(average.state_dict())
    frozen_bias = model.bias.detach().clone()
    restored.copy_to_model()
    torch.testing.assert_close(model.weight.detach(), torch.stack(seen[2:]).mean(0))
    assert torch.equal(model.bias, frozen_bias)
    with pytest.raises(ValueError, match="another configuration"):
        TailAverage(model, max_steps=5, fraction=0.2).load_state_dict(average.state_dict())
    with pytest.raises(ValueError, match="average_last"):
        TailAverage(model, max_steps=5, fraction=1.5)


def _train(root: Path, *extra: str) -> Path:
    """Train the tiny model 6 steps with a checkpoint after every step; returns its checkpoint folder."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="vision_language_pretraining", overrides=training_overrides(root, [
            "training.max_steps=6", "training.vision_pretraining.steps=4", "training.checkpoint_every=1",
            "training.keep_checkpoints=10", "training.eval_every=100", *extra]))
    run_vision_language_pretraining(cfg)
    (folder,) = (root / "outputs" / "checkpoints" / "retinavlm_base_192px").iterdir()
    return folder


def _step_weights(checkpoints: Path, step: int) -> dict[str, torch.Tensor]:
    return load_file(str(checkpoints / f"step_{step:08d}" / "model.safetensors"))


def test_saved_weights_are_the_tail_mean_and_a_resumed_run_averages_the_same_steps(tmp_path):
    plain_root, averaged_root = tmp_path / "plain", tmp_path / "averaged"
    write_training_data(plain_root)
    shutil.copytree(plain_root, averaged_root)
    plain = _train(plain_root)
    averaged = _train(averaged_root, "training.average_last=0.5")  # steps 4, 5 and 6

    # Averaging does not change the path, so the plain run's steps 4-6 are the ones averaged.
    steps = [_step_weights(plain, s) for s in (4, 5, 6)]
    expected = {name: torch.stack([w[name] for w in steps]).mean(0) if last.is_floating_point() else last
                for name, last in steps[-1].items()}
    final = _step_weights(averaged, 6)
    assert expected.keys() == final.keys()
    moved = 0
    for name, tensor in final.items():
        torch.testing.assert_close(tensor, expected[name], rtol=1e-5, atol=1e-6, msg=name)
        moved += not torch.equal(tensor, steps[-1][name])
    assert moved > 0, "the average equals the last step's weights: nothing was averaged"
    saved = load_file(str(averaged_root / "outputs" / "models" / "retinavlm_base_192px" / "model.safetensors"))
    assert any(not torch.equal(t, load_file(str(plain_root / "outputs" / "models" / "retinavlm_base_192px"
                                                 / "model.safetensors"))[n]) for n, t in saved.items())

    # Resume after step 5: the average of steps 4 and 5 comes back from the checkpoint.
    shutil.rmtree(averaged / "step_00000006")
    shutil.rmtree(averaged_root / "outputs" / "models" / "retinavlm_base_192px")
    _train(averaged_root, "training.average_last=0.5")
    for name, tensor in _step_weights(averaged, 6).items():
        torch.testing.assert_close(tensor, final[name], rtol=1e-5, atol=1e-6, msg=name)


def test_an_average_fraction_outside_zero_to_one_is_refused_by_name(tmp_path):
    write_training_data(tmp_path)
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="vision_language_pretraining",
                      overrides=training_overrides(tmp_path, ["training.average_last=1.5"]))
    with pytest.raises(ConfigError, match="training.average_last"):
        run_vision_language_pretraining(cfg)
