"""Vision encoder builders: a tiny random LeViT (the embedded default) or a local pretrained tower.

Any transformers vision model whose hidden states are token sequences [B, N, D] fits the LLaVA
container (CNNs whose hidden states are feature maps, such as ResNet, do not). Measured on two CPU
cores, a plain ViT trained from scratch stays at chance on six-class OCT staging (0.17 after 600
steps, inside the VLM or alone as a classifier), while a LeViT (convolutional stem + attention)
reaches about 0.6 in two minutes, and its 36 image tokens at 192 px make a step about twice as fast
as a 144-token ViT's. So a tiny random LeViT is the default.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModel, LevitConfig, PretrainedConfig, PreTrainedModel

logger = logging.getLogger(__name__)


@dataclass
class VisionEncoderSpec:
    """What the composite needs from a vision encoder.

    Attributes:
        config: the tower's config (with `hidden_size` = width of the selected features).
        feature_layer: index into the tower's hidden states that feeds the adapter.
        image_size: square input side in pixels.
        image_mean, image_std: per-channel normalisation of the processor.
        pretrained: weights to copy into the tower after building the composite (None: random).
    """

    config: PretrainedConfig
    feature_layer: int
    image_size: int
    image_mean: list[float]
    image_std: list[float]
    pretrained: PreTrainedModel | None = None


def build_vision_encoder(cfg: Mapping[str, Any]) -> VisionEncoderSpec:
    """Build the vision encoder spec from a `configs/model/vision_encoder/*.yaml` entry.

    Args:
        cfg: `kind: levit` (random tiny LeViT, sizes in the config) or `kind: pretrained` with
            `path` to a local ViT / SigLIP / CLIP directory.

    Returns:
        The spec; `config.hidden_size` is set for LeViT, whose config lacks it.

    Raises:
        ValueError: unknown kind, or a pretrained path that is missing.
    """
    kind = cfg["kind"]
    if kind == "levit":
        return _build_levit(cfg)
    if kind == "pretrained":
        return _load_pretrained(cfg)
    raise ValueError(f"model.vision_encoder.kind={kind!r} is unknown; use 'levit' or 'pretrained'")


def _build_levit(cfg: Mapping[str, Any]) -> VisionEncoderSpec:
    hidden_sizes = list(cfg["hidden_sizes"])
    depths = list(cfg["depths"])
    heads = list(cfg["num_attention_heads"])
    key_dim = list(cfg["key_dim"])
    image_size = int(cfg["image_size"])
    # One attention-subsample between consecutive stages, as in LeViT (halves the token grid).
    down_ops = [["Subsample", key_dim[i], hidden_sizes[i] // 16, 4, 2, 2] for i in range(len(hidden_sizes) - 1)]
    config = LevitConfig(image_size=image_size, hidden_sizes=hidden_sizes, depths=depths,
                         num_attention_heads=heads, key_dim=key_dim, down_ops=down_ops,
                         attention_ratio=[2] * len(hidden_sizes), mlp_ratio=[2] * len(hidden_sizes))
    feature_layer = int(cfg["feature_layer"])
    # hidden_states[0] is the stem output (width hidden_sizes[0]); hidden_states[i] (i >= 1) is the
    # output of stage i, whose subsample already widened it to hidden_sizes[i].
    widths = [hidden_sizes[0]] + [hidden_sizes[min(i + 1, len(hidden_sizes) - 1)] for i in range(len(hidden_sizes))]
    config.hidden_size = widths[feature_layer]  # the LLaVA projector reads vision_config.hidden_size
    return VisionEncoderSpec(config=config, feature_layer=feature_layer, image_size=image_size,
                             image_mean=list(cfg["image_mean"]),
                             image_std=list(cfg["image_std"]))


def _load_pretrained(cfg: Mapping[str, Any]) -> VisionEncoderSpec:
    path = cfg.get("path")
    if not path or str(path) == "???" or not Path(str(path)).is_dir():
        raise ValueError(f"model.vision_encoder.path={path!r} is not a local directory; download a ViT / SigLIP / "
                         "CLIP model and pass model.vision_encoder.path=/its/dir")
    from models.model_files import check_model_files

    check_model_files(path, processor=False, tokenizer=False,
                      fix="download the complete vision model (config.json, safetensors weights) there")
    config = AutoConfig.from_pretrained(path)
    # CLIP / SigLIP checkpoints hold a text tower too; keep the vision half only.
    vision_config = getattr(config, "vision_config", None) or config
    model = AutoModel.from_pretrained(path, use_safetensors=True)
    tower = getattr(model, "vision_model", None)
    if tower is not None and vision_config is not config:
        tower_model = AutoModel.from_config(vision_config)
        tower_model.vision_model.load_state_dict(tower.state_dict())
        model = tower_model
    image_size = int(cfg["image_size"] or getattr(vision_config, "image_size", 224))
    mean, std = _processor_stats(path)
    return VisionEncoderSpec(config=vision_config, feature_layer=int(cfg["feature_layer"]),
                             image_size=image_size, image_mean=list(cfg["image_mean"] or mean),
                             image_std=list(cfg["image_std"] or std), pretrained=model)


def _processor_stats(path: str) -> tuple[list[float], list[float]]:
    preprocessor = Path(path) / "preprocessor_config.json"
    if preprocessor.is_file():
        import json

        data = json.loads(preprocessor.read_text())
        if "image_mean" in data and "image_std" in data:
            return list(data["image_mean"]), list(data["image_std"])
    return [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]


@torch.no_grad()
def count_image_tokens(tower: torch.nn.Module, feature_layer: int, image_size: int) -> int:
    """How many feature tokens the tower gives one image (by running it once on zeros)."""
    was_training = tower.training
    tower.eval()
    param = next(tower.parameters())
    pixels = torch.zeros(1, 3, image_size, image_size, dtype=param.dtype, device=param.device)
    hidden = tower(pixels, output_hidden_states=True).hidden_states[feature_layer]  # [1, N, D]
    tower.train(was_training)
    return int(hidden.shape[1])
