"""The tiny default's tokenizer: byte-level BPE trained on curriculum text, Llama-3 chat format.

Byte-level BPE covers every byte, so any input tokenises with nothing unknown. The special tokens
and the chat template copy Llama-3-Instruct's layout (header ids, `<|eot_id|>` closing each turn),
so the prompt-building code in `models.prompting` serves the tiny model and a real Llama-3 alike.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

logger = logging.getLogger(__name__)

BEGIN_OF_TEXT = "<|begin_of_text|>"
START_HEADER = "<|start_header_id|>"
END_HEADER = "<|end_header_id|>"
END_OF_TURN = "<|eot_id|>"
PAD = "<|pad|>"
IMAGE_TOKEN = "<image>"
SPECIAL_TOKENS = [BEGIN_OF_TEXT, START_HEADER, END_HEADER, END_OF_TURN, PAD, IMAGE_TOKEN]

# Llama-3-Instruct's turn layout. Content may be a string (the image token written inline, as
# `models.prompting.format_prompt` does) or a list of {"type": "image"} / {"type": "text"} items
# (as the stock image-text-to-text pipeline sends).
CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}"
    "{%- if message['content'] is string %}{{- message['content'] }}"
    "{%- else %}{%- for item in message['content'] %}"
    "{%- if item['type'] == 'image' %}{{- '<image>\\n' }}"
    "{%- elif item['type'] == 'text' %}{{- item['text'] }}{%- endif %}"
    "{%- endfor %}{%- endif %}"
    "{{- '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 2048, min_frequency: int = 2,
                    model_max_length: int = 1024) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer with Llama-3-style special tokens and chat template.

    Args:
        texts: training text (curriculum questions and answers, reports).
        vocab_size: target vocabulary size, special tokens and the 256 byte symbols included.
        min_frequency: minimum pair count for a merge.
        model_max_length: longest sequence the model accepts.

    Returns:
        A fast tokenizer; its eos and pad are `<|eot_id|>` and `<|pad|>`.
    """
    texts = [t for t in texts if t]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(texts or [""], trainer=trainer)
    logger.info("trained a byte-level BPE tokenizer on %d texts: %d tokens", len(texts),
                tokenizer.get_vocab_size())
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=BEGIN_OF_TEXT, eos_token=END_OF_TURN, pad_token=PAD,
        additional_special_tokens=[START_HEADER, END_HEADER, IMAGE_TOKEN],
        model_max_length=model_max_length, padding_side="right",
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def end_of_turn_ids(tokenizer) -> list[int]:
    """Token ids that end an assistant turn: `<|eot_id|>` when the vocabulary has it, and eos."""
    ids = []
    eot = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    if isinstance(eot, int) and eot != tokenizer.unk_token_id and eot is not None:
        ids.append(eot)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids
