"""The composite VLM: build, save/load, prompts, generation, image-token checks."""

import numpy as np
import pytest
import torch
from PIL import Image

from support.configs import config_entry
from support.tiny_models import TINY_TEXTS, TINY_VLM_CFG, build_tiny_vlm
from models import ImageTokenMismatchError, build_vlm, check_image_token_count, format_prompt, generate_answers, load_vlm, save_vlm
from models.adapter import adapter_config_options
from models.tokenizer import END_OF_TURN, IMAGE_TOKEN, train_tokenizer
from models.vlm import build_processor, image_tokens_per_image


def _scan(seed: int, size=(208, 256)) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, size=size, dtype=np.uint8), mode="L")


def _inputs(processor, images, questions):
    prompts = [format_prompt(processor, q) for q in questions]
    rgb = [i.convert("RGB") for i in images]
    return processor(images=rgb, text=prompts, return_tensors="pt", padding=True, add_special_tokens=False)


def test_default_levit_tower_gives_36_image_tokens_at_192px():
    tower = config_entry("model/vision_encoder", "tiny_levit", image_size=192, hidden_sizes=[64, 128],
                         depths=[2, 2], num_attention_heads=[2, 4])
    cfg = {**TINY_VLM_CFG, "vision_encoder": tower}
    model, processor = build_vlm(cfg, TINY_TEXTS)
    assert model.config.vision_config.hidden_size == 128
    assert model.config.vision_feature_select_strategy == "full"
    assert image_tokens_per_image(processor) == 36 == check_image_token_count(model, processor)


def test_save_then_load_gives_identical_logits(tmp_path):
    model, processor = build_tiny_vlm()
    model.eval()
    save_vlm(model, processor, tmp_path / "vlm")
    loaded, loaded_processor = load_vlm(tmp_path / "vlm", device="cpu")
    assert not loaded.training
    inputs = _inputs(loaded_processor, [_scan(1), _scan(2)], ["Are there drusen?", "What stage is this?"])
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inputs).logits, model(**inputs).logits, rtol=0, atol=0)
    assert (tmp_path / "vlm" / "model.safetensors").is_file()


def test_format_prompt_places_one_image_and_a_generation_prompt():
    _, processor = build_tiny_vlm()
    prompt = format_prompt(processor, "Is there fluid?")
    assert prompt.count(IMAGE_TOKEN) == 1
    assert prompt.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    full = format_prompt(processor, "Is there fluid?", "No fluid.")
    assert full == prompt + "No fluid." + END_OF_TURN


def test_format_prompt_matches_the_list_content_template_the_pipeline_uses():
    _, processor = build_tiny_vlm()
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Is there fluid?"}]}]
    assert processor.apply_chat_template(messages, add_generation_prompt=True) == format_prompt(processor, "Is there fluid?")


def test_tokenizer_encodes_any_text_without_unknowns():
    tokenizer = train_tokenizer(TINY_TEXTS, vocab_size=300, min_frequency=1)
    for text in ["drusen 63 µm wide — naïve ✓ 視網膜", "\x00\ttabs\nnewlines", "🙂 emoji"]:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tokenizer.unk_token_id is None or tokenizer.unk_token_id not in ids
        assert tokenizer.decode(ids) == text


def test_generate_answers_batched_equals_one_by_one_and_stops_at_end_of_turn():
    model, processor = build_tiny_vlm(seed=3)
    model.eval()
    images = [_scan(i) for i in range(3)]
    questions = ["Are there drusen?", "Describe the scan in detail please.", "Stage?"]
    batched = generate_answers(model, processor, images, questions, max_new_tokens=6, batch_size=3)
    single = [generate_answers(model, processor, [i], [q], max_new_tokens=6, batch_size=1)[0]
              for i, q in zip(images, questions)]
    assert batched == single
    assert all(isinstance(a, str) and END_OF_TURN not in a for a in batched)


def test_generate_answers_needs_one_question_per_image():
    model, processor = build_tiny_vlm()
    with pytest.raises(ValueError, match="one question per image"):
        generate_answers(model, processor, [_scan(0)], ["a", "b"])


def test_wrong_image_token_count_raises_clearly():
    model, processor = build_tiny_vlm()
    wrong = build_processor(processor.tokenizer, 192, 16, [0.5] * 3, [0.5] * 3)  # 4x4 grid, tower gives 6x6
    with pytest.raises(ImageTokenMismatchError, match="inserts 16 image tokens .* yields 36"):
        check_image_token_count(model, wrong)
    with pytest.raises(ValueError, match="[Ii]mage features and image tokens do not match"):
        model(**_inputs(wrong, [_scan(0)], ["Stage?"]))


def test_non_square_token_count_is_rejected():
    _, processor = build_tiny_vlm()
    with pytest.raises(ImageTokenMismatchError, match="not a square grid"):
        build_processor(processor.tokenizer, 192, 35, [0.5] * 3, [0.5] * 3)


@pytest.mark.parametrize("name,act", [("linear", "linear"), ("mlp2x_gelu", "gelu")])
def test_adapters_map_onto_llava_projector(name, act):
    adapter = config_entry("model/adapter", name)
    assert adapter_config_options(adapter)["projector_hidden_act"] == act
    model, _ = build_vlm({**TINY_VLM_CFG, "adapter": adapter}, TINY_TEXTS)
    assert model.config.projector_hidden_act == act


def test_unknown_adapter_is_rejected():
    with pytest.raises(ValueError, match="mlp2x_gelu"):
        adapter_config_options(config_entry("model/adapter", "linear", name="qformer"))


@pytest.mark.slow
def test_overfitting_one_batch_drives_the_loss_down():
    from models.training.collate import QACollator

    torch.manual_seed(0)
    model, processor = build_tiny_vlm()
    collator = QACollator(processor, max_length=128)
    items = [{"image": _scan(i).crop((0, 0, 192, 192)).convert("RGB"), "question": "Are there drusen?",
              "answer": "Yes, large drusen." if i % 2 else "No drusen."} for i in range(4)]
    batch = collator(items)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(25):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
