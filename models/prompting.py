"""Prompt building and batched generation, shared by training, evaluation, saliency and demos.

The prompt is the tokenizer's own chat template applied to a user turn whose content starts with
the image token, so the same code serves the tiny default and a real Llama-3-Instruct tokenizer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from PIL import Image
from tqdm.auto import tqdm
from transformers import LogitsProcessorList, RepetitionPenaltyLogitsProcessor

from dataset.errors import ConfigError
from models.tokenizer import IMAGE_TOKEN, end_of_turn_ids

logger = logging.getLogger(__name__)


def _tokenizer(processor):
    return getattr(processor, "tokenizer", processor)


def image_token(processor) -> str:
    """The image placeholder string of a processor (`<image>` by default)."""
    return getattr(processor, "image_token", None) or IMAGE_TOKEN


def format_prompt(processor, question: str, answer: str | None = None) -> str:
    """The chat-formatted text of one image question (and optionally its answer).

    Args:
        processor: a LlavaProcessor (or a bare tokenizer with a chat template).
        question: the user's question; one image placeholder is put before it.
        answer: the assistant's answer; None ends the text with the assistant header
            (a generation prompt).

    Returns:
        Text containing exactly one image placeholder, ready for the processor.
    """
    messages = [{"role": "user", "content": f"{image_token(processor)}\n{question}"}]
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    return _tokenizer(processor).apply_chat_template(messages, tokenize=False,
                                                      add_generation_prompt=answer is None)


def end_of_turn_token(processor) -> str:
    """The text that closes an assistant turn (`<|eot_id|>` for Llama-3 style tokenizers)."""
    tokenizer = _tokenizer(processor)
    ids = end_of_turn_ids(tokenizer)
    return tokenizer.convert_ids_to_tokens(ids[0])


def to_rgb(images: Sequence[Image.Image]) -> list[Image.Image]:
    """Grayscale scans as RGB, as every vision tower expects three channels."""
    return [image if image.mode == "RGB" else image.convert("RGB") for image in images]


def resolve_repetition_penalty(value, key: str) -> float:
    """A configured `repetition_penalty` for `generate_answers` (absent or null = 1.0, none).

    Raises:
        dataset.errors.ConfigError: not a number, or below 1 (which would favour repeating), naming `key`.
    """
    if value is None:
        return 1.0
    try:
        penalty = float(value)
    except (TypeError, ValueError):
        penalty = float("nan")
    if not penalty >= 1.0:
        raise ConfigError(f"{key} must be a number >= 1 (1 = no penalty), got {value!r}")
    return penalty


@torch.no_grad()
def generate_answers(model, processor, images: Sequence[Image.Image], questions: Sequence[str],
                     max_new_tokens: int = 128, batch_size: int = 8, progress: bool = False,
                     repetition_penalty: float = 1.0) -> list[str]:
    """Answer one question per image with greedy decoding that stops at end-of-turn.

    Args:
        model: a LLaVA-style image-text-to-text model.
        processor: its processor.
        images: PIL images (any mode; converted to RGB).
        questions: one question per image.
        max_new_tokens: generation budget per answer.
        batch_size: images per forward pass (prompts are left-padded).
        progress: show a progress bar.
        repetition_penalty: a penalty on each token the answer has already written (transformers'
            CTRL-style one; the prompt's tokens are exempt): its logit is divided by the penalty
            when positive, multiplied when negative. 1.0 = none.

    Returns:
        The answers, stripped of special tokens.

    Raises:
        ValueError: images and questions differ in number.
    """
    if len(images) != len(questions):
        raise ValueError(f"{len(images)} images but {len(questions)} questions; give one question per image")
    tokenizer = _tokenizer(processor)
    stop_ids = end_of_turn_ids(tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0]
    device = next(model.parameters()).device
    answers: list[str] = []
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # decoder-only generation continues from the last position
    try:
        starts = range(0, len(images), batch_size)
        for start in tqdm(starts, desc="generating", disable=not progress):
            prompts = [format_prompt(processor, q) for q in questions[start:start + batch_size]]
            inputs = processor(images=to_rgb(images[start:start + batch_size]), text=prompts,
                               return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
            penalty = LogitsProcessorList([RepetitionPenaltyLogitsProcessor(
                repetition_penalty, prompt_ignore_length=inputs["input_ids"].shape[1])] if repetition_penalty != 1.0 else [])
            output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                    logits_processor=penalty, eos_token_id=stop_ids, pad_token_id=pad_id)
            new_tokens = output[:, inputs["input_ids"].shape[1]:]
            answers.extend(t.strip() for t in tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
    finally:
        tokenizer.padding_side = old_side
    return answers
