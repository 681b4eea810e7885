"""Tiny models for tests of any area, built in seconds with the project's own builders.

- The tiny VLM (`TINY_VLM_CFG`): `build_tiny_vlm`, `save_tiny_vlm` (or the session fixture
  `tiny_vlm_dir` in tests/conftest.py), and `tiny_vlm_overrides` for Hydra training runs.
- A smaller variant with calibrated batch norms for saliency maps: `build_saliency_vlm`.
- A tiny chat LLM for the local curriculum backends: `save_tiny_chat_model`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from support.configs import config_entry
from support.scans import lesion_scan, view_of
from support.tables import REPORTS

TINY_VLM_CFG = {
    "vision_encoder": config_entry("model/vision_encoder", "tiny_levit", image_size=192,
                                   hidden_sizes=[32, 64], depths=[1, 1], num_attention_heads=[1, 2],
                                   key_dim=[16, 16], feature_layer=-1),
    "adapter": config_entry("model/adapter", "linear"),
    "text_decoder": config_entry("model/text_decoder", "tiny_llama", hidden_size=64, intermediate_size=128,
                                 num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                 max_position_embeddings=512,
                                 tokenizer={"vocab_size": 400, "min_frequency": 1}),
}

# Saliency tests compute many maps: a narrower tower and decoder, and a two-layer projector.
SALIENCY_VLM_CFG = {
    "vision_encoder": {**TINY_VLM_CFG["vision_encoder"], "hidden_sizes": [16, 32], "key_dim": [8, 8]},
    "adapter": config_entry("model/adapter", "mlp2x_gelu"),
    "text_decoder": {**TINY_VLM_CFG["text_decoder"], "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 1},
}

TINY_TEXTS = [
    "What stage of AMD does this scan show?", "The scan shows early AMD with small drusen.",
    "Is there subretinal fluid?", "Yes, there is subretinal fluid, so this is active late wet AMD.",
    "Describe the retina.", "The retinal layers are normal; there is no sign of AMD. Healthy.",
    "Should the patient be referred?", "Refer urgently for anti-VEGF treatment within two weeks.",
] * 4


def build_tiny_vlm(seed: int = 0):
    """A fresh tiny (model, processor) pair: 36 image tokens at 192 px, random weights."""
    from models import build_vlm

    torch.manual_seed(seed)
    return build_vlm(TINY_VLM_CFG, TINY_TEXTS)


def save_tiny_vlm(path: str | Path, seed: int = 0) -> Path:
    """Build a tiny VLM and save it as a Hugging Face directory at `path`."""
    from models import save_vlm

    model, processor = build_tiny_vlm(seed)
    return save_vlm(model, processor, path)


def tiny_vlm_overrides() -> list[str]:
    """Hydra overrides that give the configured VLM the tiny VLM's tower, decoder and tokenizer sizes."""
    vision, text = TINY_VLM_CFG["vision_encoder"], TINY_VLM_CFG["text_decoder"]
    lists = [f"model.vision_encoder.{key}=[{','.join(map(str, vision[key]))}]"
             for key in ("hidden_sizes", "depths", "num_attention_heads")]
    sizes = [f"model.text_decoder.{key}={text[key]}" for key in
             ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads")]
    return [*lists, *sizes, *(f"model.text_decoder.tokenizer.{key}={value}" for key, value in text["tokenizer"].items())]


def build_saliency_vlm(seed: int = 0):
    """A tiny random LeViT-in-LLaVA model (6x6 = 36 image tokens at 192 px) and its processor, in eval mode.

    A freshly initialised LeViT's features nearly vanish (tiny conv weights, batch-norm running
    statistics of 1), so every image token comes out the same and any map is flat. Calibrating
    the batch-norm statistics on a few scans (forward passes only, as the first steps of training
    would) gives spatially varying features without training.
    """
    from models import build_vlm

    torch.manual_seed(seed)
    model, processor = build_vlm(SALIENCY_VLM_CFG, REPORTS * 4)
    scans = [view_of(lesion_scan(100 + i)[0]) for i in range(8)]
    pixels = processor.image_processor(images=[s.convert("RGB") for s in scans], return_tensors="pt")["pixel_values"]
    tower = model.model.vision_tower
    norms = [m for m in tower.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the calibration batch
    tower.train()
    with torch.no_grad():
        tower(pixels)
    for norm in norms:
        norm.momentum = 0.1
    return model.eval(), processor


# Each token of the tiny chat model decodes to a whole Q/A pair, so even its random generations parse.
TINY_PHRASES = ["Q: Can you see the retinal layers?\nA: Yes, they are visible.\n",
                "Q: Is the image in focus?\nA: Mostly, with some speckle.\n",
                "Q: Which part of the scan is darkest?\nA: The vitreous at the top.\n",
                "Q: Is the foveal pit visible?\nA: Yes, in the centre.\n",
                "Q: Where is the brightest band?\nA: Near the bottom of the retina.\n",
                "Q: Does the choroid show vessels?\nA: Yes, as dark lumens.\n"]


def save_tiny_chat_model(folder: Path) -> Path:
    """Save a tiny random LlamaForCausalLM with a word-level tokenizer and a chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<unk>"]
    vocab = {token: i for i, token in enumerate(specials + TINY_PHRASES)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", bos_token="<s>",
                                        eos_token="</s>", unk_token="<unk>")
    tokenizer.chat_template = ("{% for m in messages %}{{ m['content'] }}\n{% endfor %}"
                               "{% if add_generation_prompt %}<s>{% endif %}")
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
                         pad_token_id=0, bos_token_id=1, eos_token_id=2)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.lm_head.weight[:4] = 0  # special tokens get logit 0, so phrases dominate some steps
    model.generation_config.do_sample = True
    model.save_pretrained(folder)
    return folder


def tiny_chat_backend_cfg(folder: str | Path, **overrides) -> dict:
    """A local-HF language-model config (`configs/model/language_model/llama3-8b_instruct.yaml`) that
    serves the tiny chat LLM saved at `folder`, updated by `overrides`."""
    return config_entry("model/language_model", "llama3-8b_instruct", path=str(folder), model="tiny",
                        **overrides)
