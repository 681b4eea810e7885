"""The composite VLM: vision encoder + adapter + Llama decoder in transformers' LLaVA container.

Using `LlavaForConditionalGeneration` (not a custom class) is what lets a trained model save as a
standard Hugging Face directory that stock transformers loads and serves with no project code.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    CLIPImageProcessorPil,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
)

from models.adapter import adapter_config_options
from models.text_decoder import build_text_decoder
from models.tokenizer import CHAT_TEMPLATE, IMAGE_TOKEN, PAD, end_of_turn_ids, train_tokenizer
from models.vision_encoder import build_vision_encoder, count_image_tokens

logger = logging.getLogger(__name__)


class ImageTokenMismatchError(ValueError):
    """The processor inserts a different number of image tokens than the tower yields features."""


def build_vlm(model_cfg: Mapping[str, Any], tokenizer_texts: list[str],
              tokenizer=None) -> tuple[LlavaForConditionalGeneration, LlavaProcessor]:
    """Build a fresh VLM and its processor from `configs/model/` entries.

    Args:
        model_cfg: the `model` config node (`vision_encoder`, `adapter`, `text_decoder`).
        tokenizer_texts: text to train the byte-level BPE tokenizer on (ignored for a pretrained
            decoder, which brings its own tokenizer).
        tokenizer: an already trained tokenizer to use instead (e.g. when resuming a run).

    Returns:
        (model, processor); the model is in train mode on the CPU.
    """
    vision = build_vision_encoder(model_cfg["vision_encoder"])
    text_cfg = model_cfg["text_decoder"]
    if text_cfg["kind"] == "pretrained":
        text = build_text_decoder(text_cfg)
        tokenizer = _prepare_pretrained_tokenizer(text.tokenizer)
    else:
        if tokenizer is None:
            tokenizer = train_tokenizer(tokenizer_texts, **dict(text_cfg["tokenizer"]))
        text = build_text_decoder(text_cfg, vocab_size=len(tokenizer))
    text.config.pad_token_id = tokenizer.pad_token_id
    config = LlavaConfig(
        vision_config=vision.config, text_config=text.config,
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        vision_feature_layer=vision.feature_layer, vision_feature_select_strategy="full",
        **adapter_config_options(model_cfg["adapter"]),
    )
    model = LlavaForConditionalGeneration(config)
    if vision.pretrained is not None:
        model.model.vision_tower.load_state_dict(vision.pretrained.state_dict())
    if text.pretrained is not None:
        model.model.language_model.load_state_dict(text.pretrained.model.state_dict())
        model.lm_head.load_state_dict(text.pretrained.lm_head.state_dict())
        model.resize_token_embeddings(len(tokenizer))
    num_tokens = count_image_tokens(model.model.vision_tower, vision.feature_layer, vision.image_size)
    processor = build_processor(tokenizer, vision.image_size, num_tokens, vision.image_mean, vision.image_std)
    model.config.image_seq_length = num_tokens
    _set_generation_defaults(model, tokenizer)
    logger.info("built a VLM: %s image tokens, %.2fM parameters", num_tokens,
                sum(p.numel() for p in model.parameters()) / 1e6)
    return model, processor


def _prepare_pretrained_tokenizer(tokenizer):
    """Add the image token (and a pad token if the LLM has none) to a pretrained tokenizer."""
    if IMAGE_TOKEN not in tokenizer.get_vocab():
        tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    if tokenizer.pad_token is None:
        reserved = "<|finetune_right_pad_id|>"  # Llama-3.1+ reserve this for padding
        tokenizer.pad_token = reserved if reserved in tokenizer.get_vocab() else PAD
        if tokenizer.pad_token == PAD:
            tokenizer.add_special_tokens({"pad_token": PAD})
    return tokenizer


def build_processor(tokenizer, image_size: int, num_image_tokens: int, image_mean, image_std) -> LlavaProcessor:
    """A `LlavaProcessor` whose image-token expansion equals the tower's feature count.

    LlavaProcessor inserts (image_size // patch_size)^2 + num_additional_image_tokens tokens per
    image; pick the patch size that makes this `num_image_tokens` (one extra for a CLS token).

    Raises:
        ImageTokenMismatchError: no square grid dividing `image_size` gives that count.
    """
    for additional in (0, 1):
        grid = math.isqrt(max(num_image_tokens - additional, 0))
        if grid > 0 and grid * grid == num_image_tokens - additional and image_size % grid == 0:
            break
    else:
        raise ImageTokenMismatchError(
            f"the vision tower yields {num_image_tokens} feature tokens for a {image_size}px image, which is "
            "not a square grid (plus at most one CLS token) dividing the image size; change "
            "model.vision_encoder sizes or image_size")
    image_processor = CLIPImageProcessorPil(
        size={"height": image_size, "width": image_size}, do_center_crop=False, do_resize=True,
        image_mean=list(image_mean), image_std=list(image_std), do_convert_rgb=True)
    return LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=image_size // grid,
                          vision_feature_select_strategy="full", num_additional_image_tokens=additional,
                          chat_template=CHAT_TEMPLATE, image_token=IMAGE_TOKEN)


def _set_generation_defaults(model, tokenizer) -> None:
    """Greedy decoding that stops at end-of-turn, so stock `generate` and pipelines stop too."""
    stop = end_of_turn_ids(tokenizer)
    model.generation_config.eos_token_id = stop
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.do_sample = False
    model.config.text_config.eos_token_id = stop[0] if stop else None


def image_tokens_per_image(processor) -> int:
    """How many image tokens the processor inserts for one image."""
    size = processor.image_processor.size
    height = size["height"] if "height" in size else size["shortest_edge"]
    width = size["width"] if "width" in size else size["shortest_edge"]
    count = (height // processor.patch_size) * (width // processor.patch_size)
    count += processor.num_additional_image_tokens
    return count - 1 if processor.vision_feature_select_strategy == "default" else count


def check_image_token_count(model, processor) -> int:
    """Check that the processor's image tokens match the tower's feature tokens.

    Returns:
        The number of image tokens per image.

    Raises:
        ImageTokenMismatchError: they differ; the message gives both counts and the fix.
    """
    size = processor.image_processor.size
    image_size = size.get("height") or size.get("shortest_edge")
    features = count_image_tokens(model.model.vision_tower, model.config.vision_feature_layer, image_size)
    if model.config.vision_feature_select_strategy == "default":
        features -= 1
    tokens = image_tokens_per_image(processor)
    if tokens != features:
        raise ImageTokenMismatchError(
            f"the processor inserts {tokens} image tokens per image but the vision tower yields {features} "
            f"features for a {image_size}px image; set processor patch_size so that "
            f"(image_size // patch_size)^2 + num_additional_image_tokens == {features} "
            "(models.vlm.build_processor does this)")
    return tokens


def save_vlm(model, processor, path: str | Path) -> Path:
    """Save model (safetensors) and processor as a standard Hugging Face directory, atomically.

    A peft-wrapped model is merged first so the directory loads without peft. The files go to a
    temporary sibling folder, which replaces `path` only once complete (`models.model_files`): a
    crash mid-save keeps the previous model and never leaves a half-written one.
    """
    from models.model_files import atomic_folder, check_model_files

    path = Path(path)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    with atomic_folder(path, check=check_model_files) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        processor.save_pretrained(staging)
    logger.info("saved the VLM to %s", path)
    return path


def load_vlm(path: str | Path, device: str | torch.device | None = None):
    """Load a saved VLM with stock transformers (safetensors only, no remote code), in eval mode.

    Args:
        path: a Hugging Face image-text-to-text directory.
        device: where to put the model; default CUDA when available, else CPU.

    Returns:
        (model, processor).

    Raises:
        FileNotFoundError: the directory does not exist.
        IncompleteModelError: weights (or their integrity), processor or tokenizer files are missing.
    """
    from models.model_files import check_model_files

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"no model directory at {path}; train one with run/vision_language_pretraining.py "
                                "or point the registry entry at an existing Hugging Face directory")
    check_model_files(path, fix="save it again (run/vision_language_pretraining.py) or copy the complete folder")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = AutoModelForImageTextToText.from_pretrained(path, use_safetensors=True, trust_remote_code=False)
    processor = AutoProcessor.from_pretrained(path, trust_remote_code=False)
    return model.to(device).eval(), processor
