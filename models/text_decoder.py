"""Text decoder builders: a tiny random Llama (the embedded default) or a local Llama-3 directory."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, LlamaConfig, PretrainedConfig


@dataclass
class TextDecoderSpec:
    """The LLM half of the composite: its config, and for a pretrained one its weights and tokenizer."""

    config: PretrainedConfig
    pretrained: Any = None
    tokenizer: Any = None


def build_text_decoder(cfg: Mapping[str, Any], vocab_size: int | None = None) -> TextDecoderSpec:
    """Build the text decoder spec from a `configs/model/text_decoder/*.yaml` entry.

    Args:
        cfg: `kind: llama` (random, sizes in the config) or `kind: pretrained` with `path` to a
            local Llama-architecture directory (e.g. Meta-Llama-3-8B-Instruct).
        vocab_size: vocabulary of the trained tokenizer (random decoder only).

    Raises:
        ValueError: unknown kind, a missing pretrained path, or no `vocab_size` for a random decoder.
        IncompleteModelError: the pretrained folder lacks safetensors weights or tokenizer files.
    """
    kind = cfg["kind"]
    if kind == "llama":
        if vocab_size is None:
            raise ValueError("a random (kind: llama) text decoder needs vocab_size, the tokenizer's length")
        config = LlamaConfig(
            vocab_size=int(vocab_size),
            hidden_size=int(cfg["hidden_size"]),
            intermediate_size=int(cfg["intermediate_size"]),
            num_hidden_layers=int(cfg["num_hidden_layers"]),
            num_attention_heads=int(cfg["num_attention_heads"]),
            num_key_value_heads=int(cfg["num_key_value_heads"]),
            max_position_embeddings=int(cfg["max_position_embeddings"]),
            rope_theta=float(cfg["rope_theta"]),
            tie_word_embeddings=bool(cfg["tie_word_embeddings"]),
        )
        return TextDecoderSpec(config=config)
    if kind == "pretrained":
        path = cfg.get("path")
        if not path or str(path) == "???" or not Path(str(path)).is_dir():
            raise ValueError(f"model.text_decoder.path={path!r} is not a local directory; download a "
                             "Llama-architecture model (e.g. Meta-Llama-3-8B-Instruct) and pass "
                             "model.text_decoder.path=/its/dir")
        from models.model_files import check_model_files

        check_model_files(path, processor=False, tokenizer=True,
                          fix="download the complete model (safetensors weights and tokenizer) there")
        dtype = cfg["dtype"]
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, use_safetensors=True)
        tokenizer = AutoTokenizer.from_pretrained(path)
        return TextDecoderSpec(config=AutoConfig.from_pretrained(path), pretrained=model, tokenizer=tokenizer)
    raise ValueError(f"model.text_decoder.kind={kind!r} is unknown; use 'llama' or 'pretrained'")
