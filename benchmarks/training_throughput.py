"""Training throughput of the VLM: samples/s, tokens/s, peak memory and model FLOP utilisation.

MFU is the model's measured training FLOP/s (counted by torch's FlopCounterMode on one step) as a
ratio to a dense matrix-multiply peak measured in the same run on the same device and dtype, so the
figure is comparable across machines without a vendor spec sheet.

    python benchmarks/training_throughput.py                      # the embedded default, CPU
    python benchmarks/training_throughput.py --preset gpu         # Llama-3-8B + ViT-L/16 shapes, random weights
    python benchmarks/training_throughput.py --preset gpu --num-layers 2 --device cpu   # smoke test of the shapes
    python benchmarks/training_throughput.py --compare-autocast --answer-tokens 250     # bf16 autocast vs float32

`--compare-autocast` times the same steps in float32 and under bf16 autocast (float32 weights, what
`training.mixed_precision=bf16` does) in one run and prints the ratio; part 2's long reports are
about 250 answer tokens.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch.utils.flop_counter import FlopCounterMode
from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from models.policies import apply_trainable_policy, count_parameters  # noqa: E402

PRESETS = {
    # The shipped default (configs/model/*): tiny LeViT, linear adapter, tiny Llama, full training.
    "default": {"batch_size": 16, "prompt_tokens": 24, "answer_tokens": 40, "dtype": "float32", "policy": "full",
                "device": "cpu"},
    # The reference scale: Llama-3-8B-Instruct + a ViT-L/16 tower, LoRA on the LLM, bf16.
    "gpu": {"batch_size": 8, "prompt_tokens": 64, "answer_tokens": 256, "dtype": "bfloat16", "policy": "lora",
            "device": "cuda"},
}


def build_model(preset: str, num_layers: int | None):
    """Random-weight model of the preset's shapes and its image-token count."""
    if preset == "default":
        from hydra import compose, initialize_config_dir

        from models import build_vlm

        with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
            cfg = compose(config_name="vision_language_pretraining",
                          overrides=[f"paths.root_dir={REPO}", "run_dir=/tmp/benchmark"])
        if num_layers:
            cfg.model.text_decoder.num_hidden_layers = num_layers
        texts = ["Is there subretinal fluid in this OCT scan? Large drusen and a serous PED are seen."] * 50
        model, processor = build_vlm(cfg.model, texts)
        return model, model.config.image_seq_length, int(cfg.dataset.crop_size)
    vision = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=num_layers or 24,
                              num_attention_heads=16, image_size=224, patch_size=16)
    text = LlamaConfig(vocab_size=128256, hidden_size=4096, intermediate_size=14336,
                       num_hidden_layers=num_layers or 32, num_attention_heads=32, num_key_value_heads=8,
                       max_position_embeddings=8192, rope_theta=500000.0)
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_id=128255, vision_feature_layer=-2,
                         vision_feature_select_strategy="full", projector_hidden_act="gelu")
    return LlavaForConditionalGeneration(config), (224 // 16) ** 2 + 1, 224


def synthetic_batch(model, image_tokens: int, image_size: int, cfg: dict, device, dtype):
    """Random token ids with one image's tokens per row; labels on the answer part only."""
    batch, prompt, answer = cfg["batch_size"], cfg["prompt_tokens"], cfg["answer_tokens"]
    vocab = model.config.text_config.vocab_size
    image_id = model.config.image_token_id
    ids = torch.randint(0, min(vocab, image_id) - 1, (batch, prompt + image_tokens + answer))
    ids[:, 1:1 + image_tokens] = image_id  # [B, T]
    labels = torch.full_like(ids, -100)
    labels[:, -answer:] = ids[:, -answer:]
    pixels = torch.randn(batch, 3, image_size, image_size, dtype=dtype)  # [B, 3, S, S]
    return {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device),
            "labels": labels.to(device), "pixel_values": pixels.to(device)}


def matmul_peak(device, dtype, size: int, repeats: int) -> float:
    """Dense matmul FLOP/s on this device and dtype (best of `repeats`)."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(repeats + 1):
        _sync(device)
        start = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def count_step_flops(model, step) -> int:
    """FLOPs of one training step, counted by torch's FlopCounterMode.

    The counter's formula for scaled-dot-product attention rejects grouped-query shapes (Llama-3's
    8 key/value heads for 32 query heads), so the counted step runs eager attention: the same
    matrix products, written out, with the key/value heads repeated as SDPA would.
    """
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    previous = inner.config._attn_implementation
    inner.set_attn_implementation("eager")
    try:
        with FlopCounterMode(display=False) as counter:
            step()
    finally:
        inner.set_attn_implementation(previous)
    return counter.get_total_flops()


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def peak_memory_gib(device) -> float:
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default")
    parser.add_argument("--steps", type=int, default=10, help="timed optimiser steps")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--device")
    parser.add_argument("--num-layers", type=int, help="override LLM (and ViT) depth, e.g. for a CPU smoke test")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--answer-tokens", type=int, help="answer tokens per sample (the preset's otherwise)")
    parser.add_argument("--compare-autocast", action="store_true",
                        help="also time the steps under bf16 autocast and print the speed-up over float32")
    args = parser.parse_args()
    cfg = dict(PRESETS[args.preset])
    if args.batch_size:
        cfg["batch_size"] = args.batch_size
    if args.answer_tokens:
        cfg["answer_tokens"] = args.answer_tokens
    device = args.device or cfg["device"]
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        sys.exit("the gpu preset needs CUDA; add --device cpu --num-layers 2 for a CPU smoke test")
    dtype = getattr(torch, cfg["dtype"])
    torch.manual_seed(0)
    torch.set_default_dtype(dtype)
    with torch.device(device):  # build in place: an 8B model never passes through CPU float32
        model, image_tokens, image_size = build_model(args.preset, args.num_layers)
    torch.set_default_dtype(torch.float32)
    # The training default's policy settings (LoRA rank, targets, ...), with the preset's policy name.
    policy = OmegaConf.to_container(OmegaConf.load(REPO / "configs" / "training" / "default.yaml").policy)
    policy.update(name=cfg["policy"])
    policy["lora"]["dropout"] = 0.0
    model = apply_trainable_policy(model.to(device=device, dtype=dtype), policy)
    if args.gradient_checkpointing:
        inner = model.base_model.model if hasattr(model, "base_model") else model
        inner.model.language_model.gradient_checkpointing_enable({"use_reentrant": False})
    trainable, total = count_parameters(model)
    batch = synthetic_batch(model, image_tokens, image_size, cfg, device, dtype)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()

    def step(autocast: bool = False):
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=autocast):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def seconds_per_step(autocast: bool) -> float:
        for _ in range(args.warmup):
            step(autocast)
        _sync(device)
        start = time.perf_counter()
        for _ in range(args.steps):
            step(autocast)
        _sync(device)
        return (time.perf_counter() - start) / args.steps

    flops_per_step = count_step_flops(model, step)
    seconds = seconds_per_step(False)
    peak = matmul_peak(device, dtype, 4096 if torch.device(device).type == "cuda" else 1024, repeats=5)
    tokens = batch["input_ids"].numel()
    report = {
        "preset": args.preset, "device": str(device), "dtype": cfg["dtype"], "policy": cfg["policy"],
        "parameters_total": total, "parameters_trainable": trainable, "batch_size": cfg["batch_size"],
        "tokens_per_sample": batch["input_ids"].shape[1], "image_tokens": image_tokens,
        "seconds_per_step": round(seconds, 4), "samples_per_s": round(cfg["batch_size"] / seconds, 2),
        "tokens_per_s": round(tokens / seconds, 1), "peak_memory_gib": round(peak_memory_gib(device), 3),
        "model_tflop_per_step": round(flops_per_step / 1e12, 4),
        "achieved_tflops": round(flops_per_step / seconds / 1e12, 4),
        "matmul_peak_tflops": round(peak / 1e12, 4),
        "mfu_vs_measured_matmul_peak": round(flops_per_step / seconds / peak, 4),
    }
    if args.compare_autocast:
        autocast_seconds = seconds_per_step(True)
        report["seconds_per_step_bf16_autocast"] = round(autocast_seconds, 4)
        report["bf16_autocast_speedup"] = round(seconds / autocast_seconds, 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
