"""Teacher-forced inputs: the image, the question and a report fed back as the answer, with the
token positions of each phrase, and the phrase log-probability Grad-CAM differentiates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image

from saliency.phrases import Phrase


class PhraseAlignmentError(ValueError):
    """A phrase could not be mapped onto the tokens of the teacher-forced text."""


@dataclass
class TeacherForcedInput:
    """One image + prompt + answer, tokenised, ready for the model.

    Attributes:
        input_ids: [1, L] token ids (image tokens expanded).
        attention_mask: [1, L].
        pixel_values: [1, 3, H, W] as the processor made them.
        offsets: [L, 2] character spans of each token in the processor's (expanded) text.
        answer_start: where the answer starts in that expanded text.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    pixel_values: torch.Tensor
    offsets: torch.Tensor
    answer_start: int

    def phrase_positions(self, phrase: Phrase) -> list[int]:
        """Token positions covering `phrase` (character span within the answer).

        Raises:
            PhraseAlignmentError: no token overlaps the phrase.
        """
        start, end = self.answer_start + phrase.start, self.answer_start + phrase.end
        starts, ends = self.offsets[:, 0], self.offsets[:, 1]
        # Special tokens carry (0, 0) offsets; an overlap test needs a non-empty token span.
        overlap = (starts < end) & (ends > start) & (ends > starts)
        positions = torch.nonzero(overlap).flatten().tolist()
        if not positions or positions[0] == 0:
            raise PhraseAlignmentError(
                f"phrase {phrase.text!r} (chars {phrase.start}-{phrase.end} of the answer) matches no answer "
                f"token; the prompt formatter must keep the answer text verbatim")
        return positions

    def target_mask(self, phrases: Sequence[Phrase]) -> torch.Tensor:
        """[P, L] float mask, 1 at the positions of each phrase's tokens."""
        mask = torch.zeros(len(phrases), self.input_ids.shape[1])
        for row, phrase in enumerate(phrases):
            mask[row, self.phrase_positions(phrase)] = 1.0
        return mask


def build_teacher_forced_input(processor, image: Image.Image, text: str, answer: str) -> TeacherForcedInput:
    """Tokenise a formatted prompt that ends with (or contains) `answer`, keeping character offsets.

    Args:
        processor: a LLaVA-style processor with a fast tokenizer (offsets needed).
        image: the image the model sees (RGB or L PIL image).
        text: the full prompt text, answer included (e.g. `models.format_prompt(..., answer=...)`).
        answer: the answer text as it appears in `text`.

    Returns:
        The tokenised input.

    Raises:
        PhraseAlignmentError: the answer is not in `text` verbatim.
    """
    answer_at = text.rfind(answer)
    if not answer or answer_at < 0:
        raise PhraseAlignmentError("the formatted prompt does not contain the report verbatim; "
                                   "teacher forcing needs the answer text unchanged")
    image = image.convert("RGB")
    # The chat template writes the begin-of-text token itself (as in `models.generate_answers`).
    encoded = processor(images=[image], text=[text], return_tensors="pt", return_offsets_mapping=True,
                        add_special_tokens=False)
    # The processor repeats the image token to one per image feature, which shifts every character
    # after it; the answer follows the image, so the shift is the text added by that expansion.
    image_token = getattr(processor, "image_token", "<image>")
    image_token_id = getattr(processor, "image_token_id", None)
    if image_token_id is None:
        image_token_id = processor.tokenizer.convert_tokens_to_ids(image_token)
    expanded = int((encoded["input_ids"] == image_token_id).sum()) - text.count(image_token)
    shift = expanded * len(image_token)
    return TeacherForcedInput(
        input_ids=encoded["input_ids"],
        attention_mask=encoded["attention_mask"],
        pixel_values=encoded["pixel_values"],
        offsets=encoded["offset_mapping"][0],
        answer_start=answer_at + shift,
    )


def phrase_log_probability(model, pixel_values: torch.Tensor, input_ids: torch.Tensor,
                           attention_mask: torch.Tensor, target_mask: torch.Tensor) -> torch.Tensor:
    """Sum of log-probabilities of the masked tokens under teacher forcing, one value per row.

    Only the logits from the first masked position onward are computed (`logits_to_keep`), which
    matters for large vocabularies.

    Args:
        model: a LLaVA-style image-text-to-text model.
        pixel_values: [B, 3, H, W].
        input_ids: [B, L].
        attention_mask: [B, L].
        target_mask: [B, L]; 1 where a token belongs to the phrase (position 0 never does).

    Returns:
        [B] summed log-probabilities.
    """
    first = int(torch.nonzero(target_mask.sum(0)).min())
    keep = input_ids.shape[1] - first + 1  # logits at position t predict token t + 1
    logits = model(input_ids=input_ids, pixel_values=pixel_values, attention_mask=attention_mask,
                   logits_to_keep=keep).logits  # [B, keep, V]
    log_probs = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # predicts positions first..L-1
    targets = input_ids[:, first:]  # [B, keep - 1]
    token_log_probs = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return (token_log_probs * target_mask[:, first:].to(token_log_probs.dtype)).sum(-1)
