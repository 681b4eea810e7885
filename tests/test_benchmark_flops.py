"""The training benchmark: FLOPs of grouped-query attention models (Llama-3's shape), bf16 autocast timing."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
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


@pytest.mark.slow
def test_the_benchmark_times_bf16_autocast_against_float32_in_one_run():
    done = subprocess.run([sys.executable, str(SCRIPT), "--compare-autocast", "--steps", "1", "--warmup", "0",
                           "--num-layers", "1", "--answer-tokens", "8", "--batch-size", "2"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout[done.stdout.index("{"):])
    assert report["seconds_per_step"] > 0 and report["seconds_per_step_bf16_autocast"] > 0
    ratio = report["seconds_per_step"] / report["seconds_per_step_bf16_autocast"]
    assert report["bf16_autocast_speedup"] == pytest.approx(ratio, rel=0.05)
