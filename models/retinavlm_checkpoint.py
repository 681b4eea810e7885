"""Reading the released RetinaVLM checkpoint: headers, names, int8 scales, one tensor at a time.

The release (`RetinaVLM-Specialist/`, `RetinaVLM-Base/`) is a safetensors index over shards of a
`RetinaVLM(PreTrainedModel)` wrapper around the reference's MiniGPT-4-style module:
- `model.visual_encoder.model.*`: the ResNet-50 (conv1, bn1, layer1..4 with conv/bn 1-3 and
  downsample.0/1), batch-norm buffers included;
- `model.llm.model.model.{embed_tokens, layers.N.*, norm}` and `model.llm.model.lm_head.weight`:
  Llama-3-8B-Instruct as bitsandbytes stored it in 8 bit: each linear weight in int8 with `.SCB`
  (one absmax scale per output row) and `.weight_format` (0 = row-major);
- `model.llama_proj.{weight, bias}`: the 2048 -> 4096 linear projector.

The reference module also holds aliases of the same weights (`model.llama_model` is
`model.llm.model`; `model.visual_encoder.feature_tokens_model` re-lists the ResNet's children);
saving keeps one name per shared tensor, but tensors made at save time (`weight_format`) can
appear under both. Aliases are mapped to their canonical name and used only when that is absent.
These details are read from the public source, not from the released files: everything found is
reported, and anything else stops the import with the file and key named.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
ROW_FORMAT = 0  # bitsandbytes' weight_format code for row-major int8
FORMAT_NAMES = {0: "row", 1: "col32", 2: "col_turing", 3: "col_ampere"}
# feature_tokens_model = Sequential(*resnet.children()[:-1]): child index -> attribute name.
RESNET_CHILDREN = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "layer5"]
BN_FIELDS = r"(weight|bias|running_mean|running_var|num_batches_tracked)"
KNOWN_DROPPED = re.compile(r"\.rotary_emb\.inv_freq$")  # recomputed from the config by transformers


class CheckpointError(ValueError):
    """The checkpoint is not what the importer knows; the message names the file and key."""


@dataclass(frozen=True)
class SourceTensor:
    """One tensor as a shard header describes it (nothing read yet)."""

    key: str
    file: Path
    shape: tuple[int, ...]
    dtype: str  # safetensors dtype code: I8, U8, F16, BF16, F32, I64, ...


@dataclass
class PlannedTensor:
    """A tensor of the converted model and where it comes from."""

    target: str
    source: SourceTensor
    scale_key: str | None = None  # the `.SCB` of an int8 weight


@dataclass
class CheckpointPlan:
    """What the importer found and what it will write."""

    planned: list[PlannedTensor] = field(default_factory=list)
    scales: dict[str, torch.Tensor] = field(default_factory=dict)
    aliases_skipped: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dtypes: Counter = field(default_factory=Counter)
    groups: Counter = field(default_factory=Counter)
    files: list[Path] = field(default_factory=list)

    def by_target(self) -> dict[str, PlannedTensor]:
        return {p.target: p for p in self.planned}


def list_tensors(source: Path) -> dict[str, SourceTensor]:
    """Every tensor of a checkpoint folder, from its index and shard headers (no tensor data).

    Raises:
        CheckpointError: no index or single file, a shard the index names is missing, or a
            shard's keys differ from what the index says.
    """
    index_path = source / INDEX_FILE
    if index_path.is_file():
        weight_map = json.loads(index_path.read_text()).get("weight_map") or {}
        if not weight_map:
            raise CheckpointError(f"{index_path}: no weight_map; is this a safetensors index?")
    elif (source / SINGLE_FILE).is_file():
        weight_map = None
    else:
        raise CheckpointError(f"{source}: neither {INDEX_FILE} nor {SINGLE_FILE}; give source=<the "
                              "RetinaVLM-Specialist or RetinaVLM-Base folder of RobbieHolland/RetinaVLM>")
    files = sorted(set(weight_map.values())) if weight_map else [SINGLE_FILE]
    for name in files:
        if not (source / name).is_file():
            example = next(k for k, v in weight_map.items() if v == name)
            raise CheckpointError(f"{source / name}: shard missing (the index puts {example} there); "
                                  "download every shard of the release into the source folder")
    tensors: dict[str, SourceTensor] = {}
    for name in files:
        path = source / name
        with safe_open(str(path), framework="pt") as handle:
            for key in handle.keys():
                view = handle.get_slice(key)
                if weight_map is not None and weight_map.get(key) != name:
                    said = weight_map.get(key, "nothing about it")
                    raise CheckpointError(f"{path}: key {key} is in this shard but the index says {said}; "
                                          "the download looks mixed up")
                tensors[key] = SourceTensor(key, path, tuple(view.get_shape()), view.get_dtype())
    missing = sorted(set(weight_map or {}) - set(tensors))
    if missing:
        raise CheckpointError(f"{source / weight_map[missing[0]]}: key {missing[0]} is listed in the index "
                              f"but not in the shard ({len(missing)} such keys); re-download that shard")
    return tensors


def _canonical(key: str) -> str:
    """The key's name outside the reference's aliases."""
    if key.startswith("model.llama_model."):
        return "model.llm.model." + key[len("model.llama_model."):]
    match = re.match(r"^model\.visual_encoder\.feature_tokens_model\.(\d+)\.(.*)$", key)
    if match and int(match.group(1)) < len(RESNET_CHILDREN):
        return f"model.visual_encoder.model.{RESNET_CHILDREN[int(match.group(1))]}.{match.group(2)}"
    return key


def _vision_target(rest: str) -> str | None:
    """Reference ResNet name -> transformers ResNet name (inside the vision tower)."""
    if rest == "conv1.weight":
        return "embedder.embedder.convolution.weight"
    if m := re.fullmatch(rf"bn1\.{BN_FIELDS}", rest):
        return f"embedder.embedder.normalization.{m.group(1)}"
    if m := re.fullmatch(r"layer(\d)\.(\d+)\.conv([123])\.weight", rest):
        block = f"encoder.stages.{int(m.group(1)) - 1}.layers.{m.group(2)}"
        return f"{block}.layer.{int(m.group(3)) - 1}.convolution.weight"
    if m := re.fullmatch(rf"layer(\d)\.(\d+)\.bn([123])\.{BN_FIELDS}", rest):
        return (f"encoder.stages.{int(m.group(1)) - 1}.layers.{m.group(2)}.layer.{int(m.group(3)) - 1}"
                f".normalization.{m.group(4)}")
    if m := re.fullmatch(r"layer(\d)\.(\d+)\.downsample\.0\.weight", rest):
        return f"encoder.stages.{int(m.group(1)) - 1}.layers.{m.group(2)}.shortcut.convolution.weight"
    if m := re.fullmatch(rf"layer(\d)\.(\d+)\.downsample\.1\.{BN_FIELDS}", rest):
        return f"encoder.stages.{int(m.group(1)) - 1}.layers.{m.group(2)}.shortcut.normalization.{m.group(3)}"
    return None


def target_name(key: str) -> tuple[str | None, str]:
    """(name in transformers' LlavaForConditionalGeneration, group) for a canonical source key;
    (None, "unknown") when the importer does not know the key."""
    if key.startswith("model.visual_encoder.model."):
        target = _vision_target(key[len("model.visual_encoder.model."):])
        return (f"model.vision_tower.{target}", "vision") if target else (None, "unknown")
    if key == "model.llm.model.lm_head.weight":
        return "lm_head.weight", "llm"
    llm_part = r"model\.llm\.model\.model\.(embed_tokens\.weight|norm\.weight|layers\.\d+\..+\.weight)"
    if m := re.fullmatch(llm_part, key):
        return f"model.language_model.{m.group(1)}", "llm"
    if m := re.fullmatch(r"model\.llama_proj\.(weight|bias)", key):
        return f"model.multi_modal_projector.linear_1.{m.group(1)}", "projector"
    return None, "unknown"


def plan_checkpoint(tensors: dict[str, SourceTensor], ignore: Sequence[str] = ()) -> CheckpointPlan:
    """Map every source tensor to its target, pair int8 weights with their scales, and load the
    (small) scales; stop at anything unexpected.

    Args:
        tensors: from `list_tensors`.
        ignore: regular expressions of keys to drop knowingly (each drop is reported).

    Returns:
        The plan.

    Raises:
        CheckpointError: unknown keys, an int8 weight without `.SCB`, scales without a weight, a
            scale count that is not one per output row, or a non-row `weight_format`.
    """
    plan = CheckpointPlan(files=sorted({t.file for t in tensors.values()}))
    patterns = [re.compile(p) for p in ignore]
    canonical_present = {k for k in tensors if _canonical(k) == k}
    unknown: list[SourceTensor] = []
    side: dict[str, SourceTensor] = {}  # .SCB and .weight_format by their weight's key
    for key in sorted(tensors):
        info = tensors[key]
        plan.dtypes[info.dtype] += 1
        canonical = _canonical(key)
        if canonical != key and canonical in canonical_present:
            plan.aliases_skipped.append(key)
            continue
        if any(p.search(key) for p in patterns) or KNOWN_DROPPED.search(canonical):
            plan.dropped.append(key)
            continue
        if canonical.endswith((".SCB", ".weight_format")):
            side[canonical] = info
            continue
        target, group = target_name(canonical)
        if target is None:
            unknown.append(info)
            continue
        plan.groups[group] += 1
        plan.planned.append(PlannedTensor(target=target, source=info))
    if unknown:
        shown = "; ".join(f"{t.file.name}: {t.key} {list(t.shape)} {t.dtype}" for t in unknown[:8])
        raise CheckpointError(f"{len(unknown)} key(s) the importer does not know: {shown}. If they are safe "
                              "to drop, rerun with ignore_keys='[<regex>]'; otherwise this is not a "
                              "RetinaVLM release")
    _attach_scales(plan, side)
    return plan


def _attach_scales(plan: CheckpointPlan, side: dict[str, SourceTensor]) -> None:
    for planned in plan.planned:
        info = planned.source
        base = _canonical(info.key)[: -len(".weight")] if info.key.endswith(".weight") else None
        scale = side.pop(f"{base}.SCB", None) if base else None
        form = side.pop(f"{base}.weight_format", None) if base else None
        if info.dtype != "I8":
            if scale is not None:
                raise CheckpointError(f"{scale.file}: {scale.key} scales {info.key}, which is {info.dtype}, "
                                      "not int8")
            continue
        if scale is None:
            raise CheckpointError(f"{info.file}: {info.key} is int8 but no {base}.SCB is in any shard; "
                                  "without its row scales it cannot be dequantised (re-download the release)")
        values = _read(scale)
        if tuple(values.shape) != (info.shape[0],):
            raise CheckpointError(f"{scale.file}: {scale.key} has shape {list(values.shape)}, expected one "
                                  f"scale per output row of {info.key} {list(info.shape)}")
        if form is None:
            plan.notes.append(f"{info.key}: no weight_format; read as row-major")
        else:
            code = int(_read(form).reshape(-1)[0])
            if code != ROW_FORMAT:
                layout = FORMAT_NAMES.get(code, "unknown")
                raise CheckpointError(f"{form.file}: {form.key} = {code} ({layout}), a GPU-tiled int8 "
                                      "layout; only row-major (0) can be dequantised here")
        plan.scales[scale.key] = values.float()
        planned.scale_key = scale.key
    if side:
        orphan = sorted(side.values(), key=lambda t: t.key)[0]
        owner = orphan.key.rsplit(".", 1)[0] + ".weight"
        raise CheckpointError(f"{orphan.file}: {orphan.key} belongs to no weight (no {owner} in any shard); "
                              f"{len(side)} such key(s); the release looks incomplete")


def _read(info: SourceTensor) -> torch.Tensor:
    with safe_open(str(info.file), framework="pt") as handle:
        return handle.get_tensor(info.key)


def dequantise_rowwise(codes: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """LLM.int8 row-wise dequantisation: W = int8 * SCB[:, None] / 127 (fp32).

    Scaling by columns instead silently corrupts square matrices and fails on the others.
    """
    return codes.to(torch.float32) * scale.to(torch.float32)[:, None] / 127


def vision_layout(plan: CheckpointPlan) -> dict[str, object]:
    """The ResNet's sizes read off the checkpoint: stem width, input channels, per-stage widths
    and depths.

    Raises:
        CheckpointError: no stem convolution, or a stem that does not take one channel.
    """
    targets = plan.by_target()
    stem = targets.get("model.vision_tower.embedder.embedder.convolution.weight")
    if stem is None:
        raise CheckpointError("no model.visual_encoder.model.conv1.weight in any shard; "
                              "not a RetinaVLM release")
    out_channels, in_channels = stem.source.shape[:2]
    if in_channels != 1:
        raise CheckpointError(f"{stem.source.file}: {stem.source.key} takes {in_channels} input channels; "
                              "RetinaVLM's encoder takes one (grayscale)")
    depths: dict[int, int] = {}
    widths: dict[int, int] = {}
    for target, planned in targets.items():
        last_conv = r"model\.vision_tower\.encoder\.stages\.(\d+)\.layers\.(\d+)\.layer\.2\.convolution"
        if m := re.fullmatch(last_conv + r"\.weight", target):
            stage, block = int(m.group(1)), int(m.group(2))
            depths[stage] = max(depths.get(stage, 0), block + 1)
            widths[stage] = planned.source.shape[0]
    stages = sorted(depths)
    return {"num_channels": 1, "embedding_size": out_channels, "hidden_sizes": [widths[s] for s in stages],
            "depths": [depths[s] for s in stages]}
