"""The 8-bit policy: a real int8 LLM on CUDA (gpu tests), and a clear early error elsewhere."""

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from support.configs import training_policy
from support.tiny_models import save_tiny_vlm
from support.training import training_overrides, write_training_data
from models import load_vlm
from models.policies import apply_trainable_policy, check_8bit_policy, unwrap_for_saving
from models.quantization import EightBitUnavailableError, is_8bit, load_vlm_8bit
from models.training import run_vision_language_pretraining

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _compose(overrides):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name="vision_language_pretraining", overrides=overrides)


def test_eight_bit_with_the_full_policy_is_refused():
    if not torch.cuda.is_available():
        with pytest.raises(EightBitUnavailableError, match="needs a CUDA GPU"):
            check_8bit_policy(training_policy(name="full", load_in_8bit=True))
        return
    with pytest.raises(EightBitUnavailableError, match="adapter_only"):
        check_8bit_policy(training_policy(name="full", load_in_8bit=True))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")
def test_eight_bit_without_cuda_stops_before_any_training(tmp_path):
    write_training_data(tmp_path)
    cfg = _compose(training_overrides(tmp_path, ["training.policy.name=adapter", "training.policy.load_in_8bit=true",
                                                 "training.vision_pretraining.steps=50"]))
    with pytest.raises(EightBitUnavailableError, match="needs a CUDA GPU"):
        run_vision_language_pretraining(cfg)
    assert not (tmp_path / "run" / "vision_pretraining.csv").exists()
    assert not (tmp_path / "outputs" / "models").exists()


@pytest.mark.gpu
def test_eight_bit_load_quantises_the_llm_and_trains_the_adapter_only(tmp_path):
    folder = save_tiny_vlm(tmp_path / "tiny")
    model = load_vlm_8bit(folder)
    linear_types = {type(m).__name__ for n, m in model.named_modules()
                    if "language_model" in n and "proj" in n.rsplit(".", 1)[-1]}
    assert linear_types == {"Linear8bitLt"}, linear_types
    assert is_8bit(model)
    assert model.get_memory_footprint() < load_vlm(folder, device="cpu")[0].get_memory_footprint()
    model = apply_trainable_policy(model, training_policy(name="adapter", load_in_8bit=True))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("multi_modal_projector" in n for n in trainable)

    _, processor = load_vlm(folder, device="cpu")
    from PIL import Image

    image = Image.new("L", (192, 192), 90).convert("RGB")
    batch = processor(images=[image], text=[processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Stage?"}]}],
        add_generation_prompt=False)], return_tensors="pt").to("cuda")
    before = {n: p.detach().clone() for n, p in model.named_parameters() if "language_model" in n}
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    loss = model(**batch, labels=batch["input_ids"]).loss
    loss.backward()
    optimiser.step()
    assert torch.isfinite(loss)
    after = dict(model.named_parameters())
    assert all(torch.equal(before[n], after[n]) for n in before)  # the int8 LLM stayed frozen

    saved = unwrap_for_saving(model)
    assert not is_8bit(saved)


@pytest.mark.gpu
@pytest.mark.slow
def test_eight_bit_training_run_saves_a_model_that_loads_without_bitsandbytes(tmp_path):
    write_training_data(tmp_path)
    start = save_tiny_vlm(tmp_path / "start")
    summary = run_vision_language_pretraining(_compose(training_overrides(tmp_path, [
        "training.policy.name=adapter", "training.policy.load_in_8bit=true", "training.mixed_precision=bf16",
        "pretrained_models=retinavlm_base_192px", f"pretrained_models.path={start}"])))
    assert summary["steps"] == 4
    model, _ = load_vlm(summary["output_model"], device="cpu")
    assert not is_8bit(model) and "quantization_config" not in model.config.to_dict()
