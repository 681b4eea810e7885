"""Turning (image, question, answer) triples into model inputs with answer-only labels.

The prompt and the answer are tokenised separately and concatenated, so the label mask is exact:
every prompt token (image tokens included) is -100; the answer's tokens and the closing
end-of-turn token are learnt. The single image placeholder is expanded to the tower's feature
count here, exactly as LlavaProcessor does, and the count is checked per row.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch

from models.prompting import end_of_turn_token, format_prompt, to_rgb
from models.vlm import ImageTokenMismatchError, image_tokens_per_image

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100


class QACollator:
    """Builds `input_ids`, `attention_mask`, `labels` and `pixel_values` for a batch.

    Args:
        processor: the model's LlavaProcessor.
        max_length: longest sequence; answers are cut to fit (prompts never are).
    """

    def __init__(self, processor, max_length: int = 512):
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.max_length = max_length
        self.num_image_tokens = image_tokens_per_image(processor)
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(processor.image_token)
        self.end_of_turn = end_of_turn_token(processor)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.truncated_answers = 0

    def prompt_ids(self, question: str) -> list[int]:
        """Token ids of the generation prompt, the image placeholder expanded to the feature count.

        Raises:
            ImageTokenMismatchError: the question itself contains an image placeholder, so the row
                would hold more image tokens than there are images.
        """
        ids = self.tokenizer(format_prompt(self.processor, question), add_special_tokens=False)["input_ids"]
        count = ids.count(self.image_token_id)
        if count != 1:
            raise ImageTokenMismatchError(
                f"a prompt holds {count} image placeholders {self.processor.image_token!r} instead of one "
                f"(question: {question[:80]!r}); remove the placeholder text from the question")
        at = ids.index(self.image_token_id)
        return ids[:at] + [self.image_token_id] * self.num_image_tokens + ids[at + 1:]

    def encode(self, question: str, answer: str) -> tuple[list[int], list[int]] | None:
        """(input_ids, labels) of one example; None when the prompt alone leaves no room for an answer."""
        prompt = self.prompt_ids(question)
        answer_ids = self.tokenizer(answer + self.end_of_turn, add_special_tokens=False)["input_ids"]
        room = self.max_length - len(prompt)
        if room < 1:
            return None
        if len(answer_ids) > room:
            self.truncated_answers += 1
            answer_ids = answer_ids[:room]
        return prompt + answer_ids, [IGNORE_INDEX] * len(prompt) + answer_ids

    def __call__(self, items: Sequence[dict]) -> dict[str, torch.Tensor]:
        input_ids, labels, images = [], [], []
        for item in items:
            encoded = self.encode(item["question"], item["answer"])
            if encoded is None:
                raise ValueError(f"record {item.get('record_id')}: the prompt alone is longer than "
                                 f"training.max_length={self.max_length}; raise it (filter_examples drops "
                                 "such records before training)")
            input_ids.append(torch.tensor(encoded[0]))
            labels.append(torch.tensor(encoded[1]))
            images.append(item["image"])
        ids = torch.nn.utils.rnn.pad_sequence(input_ids, batch_first=True, padding_value=self.pad_id)
        batch = {
            "input_ids": ids,  # [B, T]
            "attention_mask": torch.nn.utils.rnn.pad_sequence(
                [torch.ones_like(t) for t in input_ids], batch_first=True, padding_value=0),
            "labels": torch.nn.utils.rnn.pad_sequence(labels, batch_first=True, padding_value=IGNORE_INDEX),
            "pixel_values": self.processor.image_processor(to_rgb(images), return_tensors="pt")["pixel_values"],
        }
        per_row = (ids == self.image_token_id).sum(dim=1)
        if not torch.all(per_row == self.num_image_tokens):
            raise ImageTokenMismatchError(f"image tokens per row {per_row.tolist()} != {self.num_image_tokens}")
        return batch


def filter_examples(examples: Sequence, collator: QACollator) -> list:
    """Drop (and count) examples whose prompt leaves no room for an answer within max_length."""
    lengths: dict[str, int] = {}  # curricula repeat questions; tokenise each once
    for example in examples:
        question = example.record.question
        if question not in lengths:
            lengths[question] = len(collator.prompt_ids(question))
    kept = [e for e in examples if lengths[e.record.question] < collator.max_length]
    dropped = len(examples) - len(kept)
    if dropped:
        logger.warning("dropped %d of %d examples whose prompt exceeds training.max_length=%d",
                       dropped, len(examples), collator.max_length)
    return kept
