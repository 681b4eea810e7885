"""A ResNet vision tower whose hidden states are token sequences, as RetinaVLM reads its encoder.

RetinaVLM (Holland et al., 2024) encodes a 192x192 one-channel OCT scan with a ResNet-50
(bottleneck blocks [3, 4, 6, 3], stride on the 3x3 convolution, a 7x7 stride-2 stem, no
classifier) and turns the last (B, 2048, 6, 6) map into 36 tokens by a plain `view(B, -1, 2048)`
of the channel-major buffer: no permute, so token i holds a slice of the flattened
channel-by-position buffer, not spatial position i. This tower reproduces that order exactly.

The convolutional blocks are transformers' own ResNet modules (the same torchvision-style v1.5
layout), so nothing here re-implements a convolution. The tower is registered with transformers'
Auto classes when `models` is imported (`register_resnet_tower`), which is how a LLaVA directory
holding it loads through `models.load_vlm` with no `trust_remote_code`. Stock transformers without
this project does not know the `retinavlm_resnet` model type.
"""

from __future__ import annotations

import logging

import torch
from transformers import AutoConfig, AutoModel, ResNetConfig
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.models.resnet.modeling_resnet import ResNetEmbeddings, ResNetEncoder, ResNetPreTrainedModel

logger = logging.getLogger(__name__)

MODEL_TYPE = "retinavlm_resnet"
# ITU-R 601 luma, as PIL's convert("L"): used only for true colour input (see `to_one_channel`).
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


class RetinaResNetConfig(ResNetConfig):
    """A ResNet config for the token-sequence tower; `hidden_size` is the last stage's width.

    Defaults are RetinaVLM's encoder: one input channel, ResNet-50 stages.
    """

    model_type = MODEL_TYPE

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        # The LLaVA projector reads vision_config.hidden_size.
        self.hidden_size = int(self.hidden_sizes[-1])


def to_one_channel(pixel_values: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, 1, H, W].

    Every project code path hands the processor RGB copies of grayscale scans (three equal
    channels); then channel 0 is the scan itself, bit for bit. True colour input is reduced with
    PIL's luma weights.

    Raises:
        ValueError: a channel count other than 1 or 3.
    """
    channels = pixel_values.shape[1]
    if channels == 1:
        return pixel_values
    if channels != 3:
        raise ValueError(f"the RetinaVLM tower takes 1 or 3 image channels, got {channels}")
    first = pixel_values[:, :1]
    if torch.equal(pixel_values[:, 1:2], first) and torch.equal(pixel_values[:, 2:3], first):
        return first
    weights = torch.tensor(LUMA_WEIGHTS, dtype=pixel_values.dtype, device=pixel_values.device)
    return (pixel_values * weights[None, :, None, None]).sum(dim=1, keepdim=True)


def feature_map_to_tokens(feature_map: torch.Tensor) -> torch.Tensor:
    """RetinaVLM's token order: view the channel-major buffer [B, C, h, w] as [B, h*w, C].

    A reshape of the contiguous buffer, deliberately without the permute a spatial token order
    would need.
    """
    batch, channels = feature_map.shape[:2]
    return feature_map.contiguous().view(batch, -1, channels)  # [B, h*w, C], channel-major order


class RetinaResNetVisionModel(ResNetPreTrainedModel):
    """ResNet stem and stages; every hidden state is returned as a token sequence [B, N, C].

    `hidden_states` holds the stem output and each stage's output (5 entries for ResNet-50), each
    viewed as tokens; `last_hidden_state` is the last stage's. The tokens are not in spatial order,
    so Grad-CAM attributes to the module whose [B, C, h, w] map they are viewed from
    (`feature_module_name`, which `saliency.gradcam.layer=auto` asks for: `encoder.stages.3`).
    """

    config: RetinaResNetConfig
    config_class = RetinaResNetConfig
    base_model_prefix = "vision_tower"

    def __init__(self, config: RetinaResNetConfig):
        super().__init__(config)
        self.embedder = ResNetEmbeddings(config)
        self.encoder = ResNetEncoder(config)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, output_hidden_states: bool | None = None,
                return_dict: bool | None = None, **kwargs) -> BaseModelOutputWithPooling:
        """Encode images.

        Args:
            pixel_values: [B, 1 or 3, H, W] in [0, 1] (RetinaVLM used no mean/std normalisation).
            output_hidden_states, return_dict: accepted for API compatibility; hidden states are
                always returned (LLaVA selects one of them).

        Returns:
            last_hidden_state [B, N, C] and hidden_states (stem, stage 1..4), all as tokens.
        """
        gray = to_one_channel(pixel_values)
        stem = self.embedder(gray)  # [B, E, H/4, W/4]
        maps = self.encoder(stem, output_hidden_states=True, return_dict=True).hidden_states
        tokens = tuple(feature_map_to_tokens(m) for m in maps)
        return BaseModelOutputWithPooling(last_hidden_state=tokens[-1], hidden_states=tokens)


    def feature_module_name(self, index: int) -> str:
        """The module whose spatial output `hidden_states[index]` is a token view of.

        Raises:
            IndexError: no such hidden state.
        """
        count = len(self.encoder.stages) + 1  # the stem, then each stage
        if not -count <= index < count:
            raise IndexError(f"vision_feature_layer {index}: the ResNet tower has {count} hidden states")
        position = index % count
        return "embedder" if position == 0 else f"encoder.stages.{position - 1}"


def register_resnet_tower() -> None:
    """Make `retinavlm_resnet` known to AutoConfig / AutoModel (idempotent)."""
    AutoConfig.register(MODEL_TYPE, RetinaResNetConfig, exist_ok=True)
    AutoModel.register(RetinaResNetConfig, RetinaResNetVisionModel, exist_ok=True)
