"""Option-likelihood scoring: how probable each answer option is, given the image and question.

For each (image, option) pair the chat-formatted text `format_prompt(question, answer=option)` is
scored under teacher forcing; the score is the summed log-probability of the option's tokens (the
answer and, for complete answers, its end-of-turn token): the log-probability that the model
writes exactly that answer, the quantity its training maximised. `reduction="mean"` divides by
the option's token count instead; on the embedded specialist that favoured the longest options
(late wet AMD called for 172-193 of 599 test scans against 98 true) and staged 1-3 points lower.
No text is generated and nothing is parsed. When one question is asked of every image, the
prompt (image tokens and question) runs once per image with a KV cache shared by all options;
otherwise every (image, option) sequence runs in full. `score_questions` asks several questions of
the same images (the ten biomarkers) and runs the part every prompt shares, the chat header and the
image tokens, once per image.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from models import format_prompt, to_rgb
from models.prompting import image_token

logger = logging.getLogger(__name__)


REDUCTIONS = ("sum", "mean")


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"option score reduction {reduction!r} is unknown; choose one of {', '.join(REDUCTIONS)}")


def _reduce(token_lp: torch.Tensor, mask: torch.Tensor, reduction: str) -> torch.Tensor:
    """Summed (or mean) masked token log-probabilities per row."""
    total = (token_lp * mask).sum(dim=1)
    return total if reduction == "sum" else total / mask.sum(dim=1).clamp(min=1)


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
                    answers: Sequence[str], end_of_turn: bool = True, reduction: str = "sum") -> np.ndarray:
    """Answer-token log-probability of each (image, question, answer) triple in one batch.

    Args:
        end_of_turn: score the token that closes the answer too (the answer is complete); False
            scores the answer as the start of a longer reply.
        reduction: `sum` (the answer's log-probability) or `mean` (per answer token).

    Returns:
        Array [N] of log-probabilities.
    """
    _check_reduction(reduction)
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
    return _reduce(token_lp, answer_mask, reduction).cpu().numpy()


def _option_token_ids(processor, image: Image.Image, question: str, options: Sequence[str],
                      end_of_turn: bool) -> tuple[int, list[list[int]]] | None:
    """(prompt length, each option's tokens after the prompt) as the processor tokenises the whole
    text; None when an option's tokens merge with the prompt's last token (no clean split)."""
    prompt = format_prompt(processor, question)
    texts = [prompt] + [format_prompt(processor, question, o) if end_of_turn else prompt + o for o in options]
    ids = [processor(images=to_rgb([image]), text=[t], return_tensors="pt",
                     add_special_tokens=False)["input_ids"][0].tolist() for t in texts]
    prompt_ids = ids[0]
    if any(full[:len(prompt_ids)] != prompt_ids or len(full) == len(prompt_ids) for full in ids[1:]):
        return None
    return len(prompt_ids), [full[len(prompt_ids):] for full in ids[1:]]


def _prompt_ids(processor, image: Image.Image, question: str) -> list[int]:
    return processor(images=to_rgb([image]), text=[format_prompt(processor, question)], return_tensors="pt",
                     add_special_tokens=False)["input_ids"][0].tolist()


def _shared_prompt_start(processor, image: Image.Image, questions: Sequence[str]) -> tuple[int, list[list[int]]] | None:
    """(how many leading prompt tokens every question's prompt shares, each prompt's remaining
    tokens): the shared start is the chat header and the image tokens, which come before the
    question, and every prompt keeps at least one token of its own. None when the shared start
    does not hold every image token."""
    prompts = [_prompt_ids(processor, image, q) for q in questions]
    shared = 0
    while shared < min(len(p) for p in prompts) - 1 and len({p[shared] for p in prompts}) == 1:
        shared += 1
    image_id = _tokenizer(processor).convert_tokens_to_ids(image_token(processor))
    if image_id in prompts[0][shared:]:
        return None
    return shared, [p[shared:] for p in prompts]


@torch.no_grad()
def _score_after_prompt(model, processor, first: torch.Tensor, cache, prompt_len: int,
                        option_ids: list[list[int]], reduction: str) -> np.ndarray:
    """[B, K] option scores given the prompt's run: `first` [B, V], the log-probabilities of the
    first answer token, and its KV cache, which is repeated for every option's continuation."""
    tokenizer = _tokenizer(processor)
    device = first.device
    num_images, num_options = first.shape[0], len(option_ids)
    cache.batch_repeat_interleave(num_options)  # [B * K] rows, image-major
    longest = max(len(o) for o in option_ids)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.tensor([o + [pad] * (longest - len(o)) for o in option_ids], device=device)  # [K, L]
    valid = torch.tensor([[1] * len(o) + [0] * (longest - len(o)) for o in option_ids], device=device)
    ids, valid = ids.repeat(num_images, 1), valid.repeat(num_images, 1)  # [B*K, L]
    mask = torch.cat([torch.ones(ids.shape[0], prompt_len, dtype=valid.dtype, device=device), valid], dim=1)
    rest = torch.log_softmax(model(input_ids=ids, attention_mask=mask, cache=cache).logits.float(),
                             dim=-1)  # [B*K, L, V]: position t predicts option token t + 1
    token_lp = torch.empty(ids.shape, device=device)
    token_lp[:, 0] = first.repeat_interleave(num_options, dim=0).gather(-1, ids[:, :1]).squeeze(-1)
    if longest > 1:
        token_lp[:, 1:] = rest[:, :-1].gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return _reduce(token_lp, valid, reduction).view(num_images, num_options).cpu().numpy()


def _image_inputs(model, processor, images: Sequence[Image.Image], question: str):
    inputs = processor(images=to_rgb(images), text=[format_prompt(processor, question)] * len(images),
                       return_tensors="pt", add_special_tokens=False).to(next(model.parameters()).device)
    inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
    return inputs


@torch.no_grad()
def _score_shared_prompt(model, processor, images: Sequence[Image.Image], question: str,
                         option_ids: list[list[int]], reduction: str = "sum") -> np.ndarray:
    """Option scores for a batch of images with one prompt pass per image: the prompt (image and
    question, identical in length for every image) is run once with a KV cache, which is then
    repeated for every option's continuation."""
    inputs = _image_inputs(model, processor, images, question)
    out = model(**inputs, use_cache=True)
    first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # [B, V]: the first option token
    return _score_after_prompt(model, processor, first, out.past_key_values, inputs["input_ids"].shape[1],
                               option_ids, reduction)


@torch.no_grad()
def _score_shared_image(model, processor, images: Sequence[Image.Image], first_question: str, prefix_len: int,
                        suffixes: list[list[int]], option_ids: list[list[list[int]]], reduction: str) -> list[np.ndarray]:
    """Several questions' option scores for a batch of images: the shared prompt start (chat
    header and image tokens, the first `prefix_len` tokens of `first_question`'s prompt) runs once
    per image; each question's own prompt tokens (`suffixes`) continue a copy of its KV cache."""
    inputs = _image_inputs(model, processor, images, first_question)
    ones = inputs["attention_mask"][:, :prefix_len]
    prefix = model(input_ids=inputs["input_ids"][:, :prefix_len], attention_mask=ones,
                   pixel_values=inputs["pixel_values"], use_cache=True).past_key_values
    scores = []
    for own_tokens, options in zip(suffixes, option_ids):
        # [B, S]: the same question for every image
        suffix = torch.tensor(own_tokens, device=ones.device)[None].expand(len(images), -1)
        cache = copy.deepcopy(prefix)
        mask = torch.cat([ones, torch.ones_like(suffix)], dim=1)
        logits = model(input_ids=suffix, attention_mask=mask, cache=cache, use_cache=True).logits
        first = torch.log_softmax(logits[:, -1].float(), dim=-1)  # [B, V]
        scores.append(_score_after_prompt(model, processor, first, cache, mask.shape[1], options, reduction))
    return scores


def score_options(model, processor, images: Sequence[Image.Image], question: str | Sequence[str],
                  options: Sequence[str], batch_size: int = 16, progress: bool = False,
                  end_of_turn: bool = True, reduction: str = "sum") -> np.ndarray:
    """Log-probability of every option for every image.

    Args:
        model: a LLaVA-style image-text-to-text model (eval mode).
        processor: its processor.
        images: PIL scans.
        question: one question for all images, or one per image.
        options: the answer texts to compare (same for every image).
        batch_size: (image, option) sequences per forward pass.
        progress: show a progress bar.
        end_of_turn: options are whole answers (see `score_sequences`).
        reduction: `sum` (default: each option's log-probability) or `mean` (per token).

    Returns:
        Array [num_images, num_options].

    Raises:
        ValueError: unknown reduction.
    """
    _check_reduction(reduction)
    if isinstance(question, str) and images:
        split = _option_token_ids(processor, images[0], question, options, end_of_turn)
        if split is not None:
            per_batch = max(1, batch_size // max(1, len(options)))
            starts = tqdm(range(0, len(images), per_batch), desc="scoring options", disable=not progress)
            chunks = [_score_shared_prompt(model, processor, images[i:i + per_batch], question, split[1],
                                           reduction) for i in starts]
            return np.concatenate(chunks).astype(np.float64)
        logger.debug("option tokens merge with the prompt; scoring full sequences instead")
    questions = [question] * len(images) if isinstance(question, str) else list(question)
    pairs = [(i, k) for i in range(len(images)) for k in range(len(options))]
    scores = np.zeros((len(images), len(options)), dtype=np.float64)
    for start in tqdm(range(0, len(pairs), batch_size), desc="scoring options", disable=not progress):
        chunk = pairs[start:start + batch_size]
        values = score_sequences(model, processor, [images[i] for i, _ in chunk],
                                 [questions[i] for i, _ in chunk], [options[k] for _, k in chunk],
                                 end_of_turn=end_of_turn, reduction=reduction)
        for (i, k), value in zip(chunk, values):
            scores[i, k] = value
    return scores


def score_questions(model, processor, images: Sequence[Image.Image], questions: Sequence[str],
                    options: Sequence[Sequence[str]], batch_size: int = 16, progress: bool = False,
                    end_of_turn: Sequence[bool] | None = None, reduction: str = "sum") -> list[np.ndarray]:
    """`score_options` for several questions about the same images (the ten biomarkers): the
    chat header and the image tokens, which every prompt starts with, run once per image instead
    of once per question, and the vision tower sees each image once. Falls back to one
    `score_options` call per question when the prompts share no image-holding start or an
    option's tokens merge with its prompt.

    Args:
        questions: one question per task.
        options: each question's option texts.
        end_of_turn: per question, whether its options are whole answers (default: all are).
        batch_size, progress, reduction: as in `score_options`.

    Returns:
        One array [num_images, len(options[q])] per question.
    """
    _check_reduction(reduction)
    ends = list(end_of_turn) if end_of_turn is not None else [True] * len(questions)
    start, splits = None, []
    if images and len(questions) > 1:
        splits = [_option_token_ids(processor, images[0], q, o, e) for q, o, e in zip(questions, options, ends)]
        start = _shared_prompt_start(processor, images[0], questions)
    if start is None or any(split is None for split in splits):  # one question at a time
        return [score_options(model, processor, images, q, o, batch_size, progress, e, reduction)
                for q, o, e in zip(questions, options, ends)]
    prefix_len, suffixes = start
    option_ids = [split[1] for split in splits]
    per_batch = max(1, batch_size // max(len(o) for o in options))
    chunks = [_score_shared_image(model, processor, images[i:i + per_batch], questions[0], prefix_len, suffixes,
                                  option_ids, reduction)
              for i in tqdm(range(0, len(images), per_batch), desc="scoring options", disable=not progress)]
    return [np.concatenate([chunk[q] for chunk in chunks]).astype(np.float64) for q in range(len(questions))]
