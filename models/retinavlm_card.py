"""The imported RetinaVLM's model card and registry entry: where it came from, how to get it."""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Any

HUB_REPO = "RobbieHolland/RetinaVLM"
PAPER = "https://arxiv.org/abs/2407.08410"


def write_model_card(path: Path, report: dict[str, Any], created_by: str | None) -> Path:
    """Write the README.md model card of an imported RetinaVLM directory.

    The header names no `library_name: transformers`: stock transformers cannot load the converted
    ResNet tower without this project's `models` package. A closed-ended evaluation later adds its
    metrics to this card and keeps the rest (`models.model_card.save_card`).

    Args:
        path: the README.md to write.
        report: `import_retinavlm`'s report (source, counts, dtype).
        created_by: the import command.

    Returns:
        The path.
    """
    today = datetime.date.today().isoformat()
    found = ", ".join(f"{count} {group}" for group, count in sorted(report["groups"].items()))
    text = f"""---
pipeline_tag: image-text-to-text
base_model: meta-llama/Meta-Llama-3-8B-Instruct
license: other
license_name: retinavlm-access-terms-and-llama3
license_link: https://huggingface.co/{HUB_REPO}
tags: [retinal-oct, amd, llava, converted, research-only]
---
# {report['name']}: RetinaVLM converted for SpecialistVLMs

RetinaVLM (Holland et al., {PAPER}) converted from the release at `{report['source']}`
(Hugging Face `{HUB_REPO}`, subfolder `{Path(report['source']).name}`) on {today} by
`{created_by or 'models.retinavlm_import.import_retinavlm'}`. The weights are the authors'; their
use is governed by the access terms of `{HUB_REPO}` and by Meta's Llama 3 Community License (the
language model is Meta-Llama-3-8B-Instruct). This card records the conversion only.

## What the conversion did
- Read {report['source_tensors']} tensors ({report['source_dtypes']}) from
  {', '.join(report['source_files'])}; mapped {found} tensors; skipped
  {report['aliases_skipped']} alias keys; dropped {report['dropped'] or 'none'}.
- Dequantised {report['int8_dequantised']} int8 linear weights row-wise, `W = int8 * SCB[:, None] / 127`,
  and wrote every floating-point weight in {report['dtype']}.
- Renamed into transformers' `LlavaForConditionalGeneration` layout: the ResNet-50 encoder as the
  `retinavlm_resnet` tower (one input channel; 36 tokens per 192x192 scan in the reference's
  channel-major `view(B, -1, 2048)` order); the single `llama_proj` layer as `linear_1` with an
  identity activation and an identity `linear_2` (the same map, exactly); untied `lm_head`.
- Preprocessing and prompt as the reference: one grayscale channel, 192x192 (bilinear), /255, no
  mean/std; the Llama-3 chat template with the system message "You are a helpful ophthalmological
  specialist chatbot capable of interpreting retinal OCT images." and the user turn "Here is an
  encoding of a retinal OCT image <Img>" + image + "</Img>.\\n" + question. Greedy decoding up to
  750 new tokens, stopping at `<|eot_id|>`.

## Loading
The tower is registered with transformers' Auto classes by importing this project's `models`
package (no remote code): `import models; model, processor = models.load_vlm("<this folder>")`,
or any SpecialistVLMs script with `pretrained_models={report['name']}`.

## Known differences from the reference
- The reference multiplied with bitsandbytes' int8 kernels (which also round activations); this
  model computes with the dequantised weights in floating point, so outputs agree up to that
  rounding, not bit for bit.
- Scans that are not 192x192 are resized with PIL's bilinear filter; the reference used
  `scipy.ndimage.zoom(order=1)`. Pixel values agree exactly for 192x192 input.
"""
    path.write_text(text)
    return path


def write_registry_entry(registry_dir: Path, name: str, model_path: str, created_by: str | None,
                         source: Path) -> Path:
    """Write `configs/pretrained_models/<name>.yaml` unless it exists (atomically).

    Returns:
        The entry's path (existing or new).
    """
    entry = registry_dir / f"{name}.yaml"
    if entry.is_file():
        return entry
    text = (f"# RetinaVLM imported from {source} (Hugging Face {HUB_REPO}; access terms there and Meta's\n"
            f"# Llama 3 licence apply): `{created_by or 'python run/import_retinavlm.py ...'}`.\n"
            f"name: {name}\nkind: local\npath: {model_path}\n"
            f"created_by: {created_by or 'python run/import_retinavlm.py source=... llm=... name=' + name}\n")
    registry_dir.mkdir(parents=True, exist_ok=True)
    temporary = registry_dir / f".{name}.yaml.{os.getpid()}"
    temporary.write_text(text)
    os.replace(temporary, entry)
    return entry
