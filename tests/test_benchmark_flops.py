"""The training benchmark counts FLOPs of grouped-query attention models (Llama-3's shape)."""

import importlib.util
from pathlib import Path

import torch
from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "training_throughput.py"


def _benchmark_module():
    spec = importlib.util.spec_from_file_location("training_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_step_flops_are_counted_for_grouped_query_attention_and_sdpa_comes_back():
    bench = _benchmark_module()
    torch.manual_seed(0)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                              image_size=32, patch_size=16)
    text = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                       num_attention_heads=4, num_key_value_heads=2)  # 2 query heads per key/value head
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_id=63, vision_feature_layer=-1,
                         vision_feature_select_strategy="full", attn_implementation="sdpa")
    model = LlavaForConditionalGeneration(config)
    image_tokens, cfg = (32 // 16) ** 2 + 1, {"batch_size": 2, "prompt_tokens": 4, "answer_tokens": 6}
    batch = bench.synthetic_batch(model, image_tokens, 32, cfg, "cpu", torch.float32)

    def step():
        model(**batch).loss.backward()

    flops = bench.count_step_flops(model, step)
    # At least the forward and backward of the LM head: 3 passes x 2 x tokens x hidden x vocab.
    tokens = batch["input_ids"].numel()
    assert flops >= 3 * 2 * tokens * 32 * 64
    assert model.config._attn_implementation == "sdpa"
