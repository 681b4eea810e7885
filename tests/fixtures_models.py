"""A tiny untrained VLM for tests of any area: built and saved in a few seconds.

Use the `tiny_vlm_dir` fixture (tests/conftest.py) or call `build_tiny_vlm` / `save_tiny_vlm`.
"""

from __future__ import annotations

from pathlib import Path

TINY_MODEL_CFG = {
    "vision_encoder": {"kind": "levit", "image_size": 192, "hidden_sizes": [32, 64], "depths": [1, 1],
                       "num_attention_heads": [1, 2], "key_dim": [16, 16], "feature_layer": -1},
    "adapter": {"name": "linear"},
    "text_decoder": {"kind": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "num_key_value_heads": 2, "max_position_embeddings": 512,
                     "tokenizer": {"vocab_size": 400, "min_frequency": 1}},
}

TINY_TEXTS = [
    "What stage of AMD does this scan show?", "The scan shows early AMD with small drusen.",
    "Is there subretinal fluid?", "Yes, there is subretinal fluid, so this is active late wet AMD.",
    "Describe the retina.", "The retinal layers are normal; there is no sign of AMD. Healthy.",
    "Should the patient be referred?", "Refer urgently for anti-VEGF treatment within two weeks.",
] * 4


def build_tiny_vlm(seed: int = 0):
    """A fresh tiny (model, processor) pair: 36 image tokens at 192 px, random weights."""
    import torch

    from models import build_vlm

    torch.manual_seed(seed)
    return build_vlm(TINY_MODEL_CFG, TINY_TEXTS)


def save_tiny_vlm(path: str | Path, seed: int = 0) -> Path:
    """Build a tiny VLM and save it as a Hugging Face directory at `path`."""
    from models import save_vlm

    model, processor = build_tiny_vlm(seed)
    return save_vlm(model, processor, path)
