"""RetinaVLM's preprocessing and prompt, as a standard LLaVA processor and chat template.

The released model saw: one grayscale channel, 192x192, integers divided by 255 (no mean/std);
and the Llama-3 chat layout with a fixed system message and a user turn that reads
"Here is an encoding of a retinal OCT image <Img>" + the 36 image embeddings + "</Img>.\\n" + the
question, `<Img>` being plain text. The processor below reproduces both, so every project path
(`models.format_prompt`, evaluation, saliency, training) sends the imported model exactly that.

The image placeholder is one of Llama-3's reserved special tokens: LLaVA overwrites its
embeddings with image features, so the vocabulary (and the untied `lm_head`) keeps its size and
the imported logits are comparable row for row with the reference's.
"""

from __future__ import annotations

import json
import re

from transformers import CLIPImageProcessorPil, LlavaProcessor
from transformers.image_utils import PILImageResampling

SYSTEM_MESSAGE = ("You are a helpful ophthalmological specialist chatbot capable of interpreting "
                  "retinal OCT images.")
IMAGE_PREFIX = "Here is an encoding of a retinal OCT image <Img>"
IMAGE_SUFFIX = "</Img>.\n"
IMAGE_SIZE = 192
PAD_TOKEN = "<|end_of_text|>"  # the reference's pad token
RESERVED = re.compile(r"^<\|reserved_special_token_\d+\|>$")


def retinavlm_chat_template(image_token: str) -> str:
    """The Llama-3-Instruct layout with RetinaVLM's system message and image wrapping.

    A string user content written as `format_prompt` writes it (`<image token>\\n<question>`) and
    a list content with an `{"type": "image"}` item (the image-text-to-text pipeline) both become
    "Here is an encoding of a retinal OCT image <Img><image token></Img>.\\n<question>". Contents
    are trimmed, as Llama-3's own template does; a leading system message replaces the default.
    """
    wrapped = json.dumps(IMAGE_PREFIX + image_token + IMAGE_SUFFIX)
    placeholder = json.dumps(image_token + "\n")
    return (
        "{{- bos_token }}"
        "{%- if messages[0]['role'] == 'system' %}"
        "{%- set system = messages[0]['content'] %}{%- set loop_messages = messages[1:] %}"
        f"{{%- else %}}{{%- set system = {json.dumps(SYSTEM_MESSAGE)} %}}"
        "{%- set loop_messages = messages %}"
        "{%- endif %}"
        "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' + system | trim + '<|eot_id|>' }}"
        "{%- for message in loop_messages %}"
        "{%- if message['content'] is string %}"
        f"{{%- set content = message['content'] | replace({placeholder}, {wrapped}) %}}"
        "{%- else %}{%- set ns = namespace(text='') %}"
        "{%- for item in message['content'] %}"
        f"{{%- if item['type'] == 'image' %}}{{%- set ns.text = ns.text + {wrapped} %}}"
        "{%- elif item['type'] == 'text' %}{%- set ns.text = ns.text + item['text'] %}{%- endif %}"
        "{%- endfor %}{%- set content = ns.text %}{%- endif %}"
        "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + content | trim"
        " + '<|eot_id|>' }}"
        "{%- endfor %}"
        "{%- if add_generation_prompt %}"
        "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
    )


def pick_image_token(tokenizer) -> str:
    """The reserved special token with the highest id, to stand for image features.

    Raises:
        ValueError: the tokenizer has no `<|reserved_special_token_N|>` (not a Llama-3 tokenizer).
    """
    reserved = {token: index for token, index in tokenizer.get_added_vocab().items() if RESERVED.match(token)}
    if not reserved:
        raise ValueError("the LLM tokenizer has no <|reserved_special_token_N|> to use as the image "
                         "placeholder; give llm=/path/to/Meta-Llama-3-8B-Instruct (its tokenizer), or "
                         "image_token=<an unused special token of this tokenizer>")
    return max(reserved, key=reserved.get)


def build_retinavlm_processor(tokenizer, image_token: str | None = None, num_image_tokens: int = 36,
                              image_size: int = IMAGE_SIZE) -> LlavaProcessor:
    """A LlavaProcessor that preprocesses and prompts as RetinaVLM did.

    Args:
        tokenizer: the Llama-3-Instruct tokenizer (its pad token is set to `<|end_of_text|>` if unset).
        image_token: the placeholder token; default `pick_image_token(tokenizer)`.
        num_image_tokens: feature tokens per image (36 at 192 px); a square number.
        image_size: square side the scans are resized to (bilinear, as the reference's scipy zoom).

    Returns:
        The processor; images come out [B, 3, size, size] in [0, 1] (three equal channels for a
        grayscale scan, which the tower reads as one).

    Raises:
        ValueError: the image token is not a single token, or the token count is not square.
    """
    image_token = image_token or pick_image_token(tokenizer)
    if len(tokenizer.encode(image_token, add_special_tokens=False)) != 1:
        raise ValueError(f"image_token {image_token!r} is not one token of this tokenizer; pick a special "
                         "token")
    side = int(round(num_image_tokens ** 0.5))
    if side * side != num_image_tokens or image_size % side:
        raise ValueError(f"{num_image_tokens} image tokens are not a square grid dividing {image_size} px")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = PAD_TOKEN if PAD_TOKEN in tokenizer.get_vocab() else tokenizer.eos_token
    image_processor = CLIPImageProcessorPil(
        size={"height": image_size, "width": image_size}, do_resize=True, do_center_crop=False,
        resample=PILImageResampling.BILINEAR, do_rescale=True, rescale_factor=1 / 255,
        do_normalize=False, do_convert_rgb=True)
    template = retinavlm_chat_template(image_token)
    tokenizer.chat_template = template
    return LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=image_size // side,
                          vision_feature_select_strategy="full", num_additional_image_tokens=0,
                          chat_template=template, image_token=image_token)
