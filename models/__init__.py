"""The specialist VLM: build, save/load in standard Hugging Face format, prompt, generate.

Public API (used by training, evaluation, saliency and the demos):
- `build_vlm(model_cfg, tokenizer_texts) -> (model, processor)`: a fresh build from config.
- `load_vlm(path, device=None) -> (model, processor)`: stock transformers load, eval mode.
- `save_vlm(model, processor, path)`.
- `format_prompt(processor, question, answer=None) -> str`.
- `generate_answers(model, processor, images, questions, max_new_tokens, batch_size) -> list[str]`.
- `models.registry.open_model(name or entry, cfg, device=None, load_in_8bit=False) -> (model, processor)`:
  how every consumer opens a registry model's weights; `resolve_model(entry_cfg)` and
  `load_registry_entry(name, cfg)` resolve and read entries.
- `models.retinavlm_import.import_retinavlm(...)`: the released RetinaVLM weights as a registry model.
"""

from models.prompting import format_prompt, generate_answers, to_rgb
from models.resnet_tower import register_resnet_tower
from models.vlm import (
    ImageTokenMismatchError,
    build_processor,
    build_vlm,
    check_image_token_count,
    load_vlm,
    save_vlm,
)

__all__ = [
    "ImageTokenMismatchError",
    "build_processor",
    "build_vlm",
    "check_image_token_count",
    "format_prompt",
    "generate_answers",
    "load_vlm",
    "save_vlm",
    "to_rgb",
]

# Importing `models` (as every loading path does) makes the imported RetinaVLM's ResNet tower
# known to transformers' Auto classes, so its directory loads with no remote code.
register_resnet_tower()
