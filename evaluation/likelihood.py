"""Option-likelihood scoring: how probable each answer option is, given the image and question.

For each (image, option) pair the chat-formatted text `format_prompt(question, answer=option)` is
run through the model under teacher forcing; the score is the mean log-probability of the option's
tokens (the answer and its end-of-turn token), so long and short options compete fairly. No text
is generated and nothing is parsed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from models import format_prompt, to_rgb

logger = logging.getLogger(__name__)


def _tokenizer(processor):
    return getattr(processor, "tokenizer", processor)


def _prompt_lengths(processor, prompt_ids: list[list[int]], full_ids: list[list[int]]) -> list[int]:
    """Tokens shared by each prompt and its prompt+answer text (where the answer starts)."""
    lengths = []
    for prompt, full in zip(prompt_ids, full_ids):
        shared = 0
        for a, b in zip(prompt, full):
            if a != b:
                break
            shared += 1
        if shared < len(prompt):
            logger.debug("prompt and answer tokens merge at the boundary; scoring from token %d", shared)
        lengths.append(shared)
    return lengths


@torch.no_grad()
def score_sequences(model, processor, images: Sequence[Image.Image], questions: Sequence[str],
                    answers: Sequence[str], end_of_turn: bool = True) -> np.ndarray:
    """Mean answer-token log-probability of each (image, question, answer) triple in one batch.

    Args:
        end_of_turn: score the token that closes the answer too (the answer is complete); False
            scores the answer as the start of a longer reply.

    Returns:
        Array [N] of length-normalised log-probabilities.
    """
    tokenizer = _tokenizer(processor)
    prompts = [format_prompt(processor, q) for q in questions]
    fulls = [format_prompt(processor, q, a) if end_of_turn else p + a
             for p, q, a in zip(prompts, questions, answers)]
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "right"  # answer positions then index the same way in every row
    try:
        rgb = to_rgb(images)
        device = next(model.parameters()).device
        full_inputs = processor(images=rgb, text=fulls, return_tensors="pt", padding=True,
                                add_special_tokens=False)
        prompt_inputs = processor(images=rgb, text=prompts, return_tensors="pt", padding=True,
                                  add_special_tokens=False)
    finally:
        tokenizer.padding_side = old_side
    full_mask = full_inputs["attention_mask"]
    full_ids = [row[m.bool()].tolist() for row, m in zip(full_inputs["input_ids"], full_mask)]
    prompt_ids = [row[m.bool()].tolist()
                  for row, m in zip(prompt_inputs["input_ids"], prompt_inputs["attention_mask"])]
    starts = _prompt_lengths(processor, prompt_ids, full_ids)
    full_inputs = full_inputs.to(device)
    full_inputs["pixel_values"] = full_inputs["pixel_values"].to(model.dtype)
    logits = model(**full_inputs).logits.float()  # [N, T, V]
    log_probs = torch.log_softmax(logits[:, :-1], dim=-1)  # position t predicts token t + 1
    targets = full_inputs["input_ids"][:, 1:]
    token_lp = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # [N, T-1]
    positions = torch.arange(targets.shape[1], device=device)[None]  # [1, T-1]
    ends = full_mask.sum(dim=1).to(device)[:, None]  # [N, 1]
    answer_mask = (positions + 1 >= torch.tensor(starts, device=device)[:, None]) & (positions + 1 < ends)
    counts = answer_mask.sum(dim=1).clamp(min=1)
    return ((token_lp * answer_mask).sum(dim=1) / counts).cpu().numpy()


def score_options(model, processor, images: Sequence[Image.Image], question: str | Sequence[str],
                  options: Sequence[str], batch_size: int = 16, progress: bool = False,
                  end_of_turn: bool = True) -> np.ndarray:
    """Length-normalised log-probability of every option for every image.

    Args:
        model: a LLaVA-style image-text-to-text model (eval mode).
        processor: its processor.
        images: PIL scans.
        question: one question for all images, or one per image.
        options: the answer texts to compare (same for every image).
        batch_size: (image, option) sequences per forward pass.
        progress: show a progress bar.
        end_of_turn: options are whole answers (see `score_sequences`).

    Returns:
        Array [num_images, num_options].
    """
    questions = [question] * len(images) if isinstance(question, str) else list(question)
    pairs = [(i, k) for i in range(len(images)) for k in range(len(options))]
    scores = np.zeros((len(images), len(options)), dtype=np.float64)
    for start in tqdm(range(0, len(pairs), batch_size), desc="scoring options", disable=not progress):
        chunk = pairs[start:start + batch_size]
        values = score_sequences(model, processor, [images[i] for i, _ in chunk],
                                 [questions[i] for i, _ in chunk], [options[k] for _, k in chunk],
                                 end_of_turn=end_of_turn)
        for (i, k), value in zip(chunk, values):
            scores[i, k] = value
    return scores
