"""The imported RetinaVLM's model card and registry entry: where it came from, how to get it.

The card is the project's own (`models.model_card`): the import writes its facts under `imported`
in `model_card.json` and renders `README.md` from them, so a later closed-ended evaluation, which
re-renders the card with its metrics, and a fine-tuning run, which carries its starting model's
facts over, keep saying where the weights came from.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Any

from models.model_card import save_card

HUB_REPO = "RobbieHolland/RetinaVLM"
PAPER = "https://arxiv.org/abs/2407.08410"
BASE_MODEL = "meta-llama/Meta-Llama-3-8B-Instruct"


def imported_facts(report: dict[str, Any], created_by: str | None) -> dict[str, Any]:
    """The `imported` card facts of a conversion: origin, terms, what was done, known differences.

    Args:
        report: `import_retinavlm`'s report (source, counts, dtype).
        created_by: the import command.
    """
    found = ", ".join(f"{count} {group}" for group, count in sorted(report["groups"].items()))
    release = Path(report["source"]).name
    return {
        "model": release, "citation": "Holland et al., 2024", "paper": PAPER, "hub_repo": HUB_REPO,
        "source": report["source"], "base_model": BASE_MODEL, "date": datetime.date.today().isoformat(),
        "license_name": "retinavlm-access-terms-and-llama3", "license_link": f"https://huggingface.co/{HUB_REPO}",
        "command": created_by or "models.retinavlm_import.import_retinavlm",
        "summary": (f"RetinaVLM ([Holland et al., 2024]({PAPER})) converted from the release at "
                    f"`{report['source']}` (Hugging Face `{HUB_REPO}`, subfolder `{release}`)."),
        "terms": (f"The weights are the authors'; their use is governed by the access terms of `{HUB_REPO}` "
                  "and by Meta's Llama 3 Community License (the language model is Meta-Llama-3-8B-Instruct). "
                  "This card records the conversion."),
        "conversion": [
            f"Read {report['source_tensors']} tensors ({report['source_dtypes']}) from "
            f"{', '.join(report['source_files'])}; mapped {found} tensors; skipped {report['aliases_skipped']} "
            f"alias keys; dropped {report['dropped'] or 'none'}.",
            f"Dequantised {report['int8_dequantised']} int8 linear weights row-wise, "
            f"`W = int8 * SCB[:, None] / 127`, and wrote every floating-point weight in {report['dtype']}.",
            "Renamed into transformers' `LlavaForConditionalGeneration` layout: the ResNet-50 encoder as the "
            "`retinavlm_resnet` tower (one input channel; 36 tokens per 192x192 scan in the reference's "
            "channel-major `view(B, -1, 2048)` order); the single `llama_proj` layer as `linear_1` with an "
            "identity activation and an identity `linear_2` (the same map, exactly); untied `lm_head`.",
            "Preprocessing and prompt as the reference: one grayscale channel, 192x192 (bilinear), /255, no "
            "mean/std; the Llama-3 chat template with the system message \"You are a helpful "
            "ophthalmological specialist chatbot capable of interpreting retinal OCT images.\" and the user "
            "turn \"Here is an encoding of a retinal OCT image <Img>\" + image + \"</Img>.\\n\" + question. "
            "Greedy decoding up to 750 new tokens, stopping at `<|eot_id|>`.",
        ],
        "differences": [
            "The reference multiplied with bitsandbytes' int8 kernels (which also round activations); this "
            "model computes with the dequantised weights in floating point, so outputs agree up to that "
            "rounding, not bit for bit.",
            "Scans that are not 192x192 are resized with PIL's bilinear filter; the reference used "
            "`scipy.ndimage.zoom(order=1)`. Pixel values agree exactly for 192x192 input.",
        ],
    }


def write_model_card(model_dir: Path, report: dict[str, Any], created_by: str | None) -> Path:
    """Write the card facts (`model_card.json`) and `README.md` of an imported RetinaVLM folder.

    Args:
        model_dir: the model folder being written.
        report: `import_retinavlm`'s report (source, counts, dtype, parameters).
        created_by: the import command.

    Returns:
        The card path.
    """
    data = {"name": report["name"], "license": "other",
            "architecture": {"vision_encoder": "retinavlm_resnet (ResNet-50)", "adapter": "linear (llama_proj)",
                             "text_decoder": "Meta-Llama-3-8B-Instruct", "total_parameters": report["parameters"],
                             "trainable_parameters": None},
            "imported": imported_facts(report, created_by), "stages": [], "evaluations": {}}
    return save_card(model_dir, data)


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
