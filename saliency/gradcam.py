"""Grad-CAM of a phrase's log-probability on a vision-encoder layer, through captum.

captum's `LayerGradCam` expects a layer whose output is channels-first ([B, C, H, W]). Vision
transformers emit token sequences ([B, N, C], maybe with a class token first), so a forward hook on
the chosen layer routes its tokens through a small identity module in grid form ([B, C, g, g]) and
captum attributes to that module. The hook changes no values; the maps are captum's Grad-CAM of
the layer's tokens laid out on their patch grid.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from captum.attr import LayerGradCam, LayerGradientXActivation, NoiseTunnel
from torch import nn

from saliency.teacher_forcing import TeacherForcedInput, phrase_log_probability

logger = logging.getLogger(__name__)

METHODS = ("gradcam", "gradient_x_activation")


@dataclass(frozen=True)
class GradCamSettings:
    """How maps are computed (the task config's `gradcam` block).

    Attributes:
        method: `gradcam` (channel weights = gradients averaged over the grid, as in Grad-CAM) or
            `gradient_x_activation` (each token's own gradient times its activation, summed over
            channels; sharper where the language model attends to single image tokens).
        layer: module path inside the vision tower (e.g. `encoder.stages.0`), or `auto` for the
            layer whose output the VLM takes as image features (`config.vision_feature_layer`), or
            a list of these tried in order: the first path the tower has wins (`auto` always
            does), so one setting serves towers that name their layers differently.
        num_prefix_tokens: tokens before the patch grid (a class token); `auto` infers it from a
            token count that is a square plus a few.
        relu: keep only positive evidence (standard Grad-CAM); maps are then non-negative.
        smoothing_samples: 0 for plain Grad-CAM; otherwise average over this many copies of the
            input with Gaussian noise (captum's NoiseTunnel, SmoothGrad-style).
        smoothing_std: noise standard deviation, in the processor's normalised pixel units.
        phrase_batch_size: phrases attributed in one forward/backward pass.
    """

    method: str = "gradcam"
    layer: str | Sequence[str] = "auto"
    num_prefix_tokens: int | str = "auto"
    relu: bool = True
    smoothing_samples: int = 0
    smoothing_std: float = 0.1
    phrase_batch_size: int = 8


def vision_tower(model: nn.Module) -> nn.Module:
    """The vision encoder of a LLaVA-style model.

    Raises:
        AttributeError: the model has no `vision_tower`.
    """
    for owner in (model, getattr(model, "model", None)):
        tower = getattr(owner, "vision_tower", None) if owner is not None else None
        if isinstance(tower, nn.Module):
            return tower
    raise AttributeError(f"{type(model).__name__} has no vision_tower; saliency needs a LLaVA-style model")


def resolve_layer(model: nn.Module, layer: str | Sequence[str], pixel_values: torch.Tensor) -> tuple[str, nn.Module]:
    """Find the vision-encoder layer to attribute to.

    Args:
        model: the VLM.
        layer: a module path relative to the vision tower, or `auto` (the module that outputs
            `hidden_states[config.vision_feature_layer]`, found by one forward pass, or named by the
            tower's `feature_module_name(index)` where its hidden states are views of other outputs),
            or a list of these: the first that the tower has.
        pixel_values: an input for that pass.

    Returns:
        (path relative to the tower, module).

    Raises:
        ValueError: no listed path is in the tower, or `auto` cannot decide (the message lists
            candidate paths).
    """
    tower = vision_tower(model)
    candidates = [layer] if isinstance(layer, str) else list(layer)
    for candidate in candidates:
        if candidate == "auto":
            return _feature_layer(model, tower, pixel_values)
        with contextlib.suppress(AttributeError):
            return candidate, tower.get_submodule(candidate)
    wanted = repr(layer) if isinstance(layer, str) else f"(none of {candidates})"
    raise ValueError(f"gradcam.layer {wanted} is not a module of the vision tower; some are: {_top_modules(tower)}")


def _top_modules(tower: nn.Module) -> str:
    """The tower's module paths at most three levels deep, for error messages."""
    return ", ".join(n for n, _ in tower.named_modules() if n and n.count(".") <= 2)


def _feature_layer(model: nn.Module, tower: nn.Module, pixel_values: torch.Tensor) -> tuple[str, nn.Module]:
    """The tower module whose output the VLM takes as image features (`layer: auto`)."""
    feature_layer = getattr(model.config, "vision_feature_layer", -1)
    if not isinstance(feature_layer, int):
        raise ValueError(f"vision_feature_layer is {feature_layer!r}; set gradcam.layer to a module path explicitly")
    if callable(getattr(tower, "feature_module_name", None)):  # a tower that names it (models.resnet_tower)
        path = tower.feature_module_name(feature_layer)
        return path, tower.get_submodule(path)
    finished: list[tuple[str, torch.Tensor]] = []
    hooks = [module.register_forward_hook(lambda m, a, out, name=name: finished.append((name, _first_tensor(out))))
             for name, module in tower.named_modules() if name]
    try:
        with torch.no_grad():
            wanted = tower(pixel_values, output_hidden_states=True).hidden_states[feature_layer]
    finally:
        for hook in hooks:
            hook.remove()
    # The outermost module producing that very tensor finishes last.
    matches = [name for name, out in finished if out is wanted]
    if not matches:
        matches = [name for name, out in finished
                   if out is not None and out.shape == wanted.shape and torch.equal(out, wanted)]
    if not matches:
        raise ValueError(f"no vision-tower module outputs hidden_states[{feature_layer}]; set gradcam.layer "
                         f"to one of: {_top_modules(tower)}")
    return matches[-1], tower.get_submodule(matches[-1])


def _first_tensor(output) -> torch.Tensor | None:
    """A module's main output tensor; None for model-output containers, whose other fields (e.g.
    `hidden_states`) would keep the unmodified tensor and bypass the hook."""
    if isinstance(output, torch.Tensor):
        return output
    if type(output) in (tuple, list) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return None


class TokenGrid(nn.Module):
    """Identity module captum attributes to; a hook feeds it the layer's tokens as a grid."""

    def forward(self, grid: torch.Tensor) -> torch.Tensor:  # [B, C, g, g] -> same
        return grid


@contextlib.contextmanager
def tokens_as_grid(layer: nn.Module, grid_module: TokenGrid, num_prefix_tokens: int | str = "auto") -> Iterator[dict]:
    """Route `layer`'s output through `grid_module` in [B, C, g, g] layout while active.

    Yields:
        A dict filled with `grid_size` (g) and `num_prefix_tokens` once the layer has run.
    """
    info: dict = {}

    def hook(module, args, output):
        tensor = _first_tensor(output)
        if tensor is None:
            raise ValueError(f"gradcam.layer {type(module).__name__} returns {type(output).__name__}, not a tensor; "
                             "choose a block inside it (e.g. encoder.stages.0 or encoder.layers.3)")
        if tensor.dim() == 4:  # already a channels-first feature map (a conv stem)
            info.update(grid_size=tuple(tensor.shape[2:]), num_prefix_tokens=0)
            return _replace_first(output, grid_module(tensor))
        tokens = tensor.shape[1]
        prefix = _prefix_count(tokens, num_prefix_tokens)
        side = math.isqrt(tokens - prefix)
        if side * side != tokens - prefix:
            raise ValueError(f"layer output has {tokens} tokens; minus {prefix} prefix token(s) that is not a "
                             f"square grid; set gradcam.num_prefix_tokens")
        head, patches = tensor[:, :prefix], tensor[:, prefix:]
        grid = patches.transpose(1, 2).reshape(tensor.shape[0], tensor.shape[2], side, side)  # [B, C, g, g]
        grid = grid_module(grid)
        patches = grid.flatten(2).transpose(1, 2)  # [B, g*g, C]
        info.update(grid_size=(side, side), num_prefix_tokens=prefix)
        return _replace_first(output, torch.cat([head, patches], dim=1))

    handle = layer.register_forward_hook(hook)
    try:
        yield info
    finally:
        handle.remove()


def _prefix_count(tokens: int, configured: int | str) -> int:
    if configured != "auto":
        return int(configured)
    prefix = tokens - math.isqrt(tokens) ** 2
    if prefix > 8:  # not "a square plus a class/register token or few"
        raise ValueError(f"cannot infer the patch grid of {tokens} tokens; set gradcam.num_prefix_tokens")
    return prefix


def _replace_first(output, tensor: torch.Tensor):
    if isinstance(output, torch.Tensor):
        return tensor
    if type(output) is tuple:
        return (tensor, *output[1:])
    return [tensor, *output[1:]]


@contextlib.contextmanager
def attribution_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode and frozen weights for the duration; the previous flags come back afterwards.

    Eval mode matters: batch-norm layers (LeViT) in training mode would mix the batch's phrases and
    update running statistics.
    """
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    was_training = {name: m.training for name, m in model.named_modules()}
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for name, p in model.named_parameters():
            p.requires_grad_(flags[name])
        for name, m in model.named_modules():
            m.training = was_training[name]


class PhraseGradCam:
    """Grad-CAM maps of phrase log-probabilities on one vision-encoder layer.

    Args:
        model: a LLaVA-style VLM (weights are never changed).
        settings: see `GradCamSettings`.
    """

    def __init__(self, model: nn.Module, settings: GradCamSettings | None = None):
        self.model = model
        self.settings = settings or GradCamSettings()
        if self.settings.method not in METHODS:
            raise ValueError(f"gradcam.method={self.settings.method!r}; use one of {METHODS}")
        self.grid_module = TokenGrid()
        self.layer_name: str | None = None
        self._layer: nn.Module | None = None

    def maps(self, example: TeacherForcedInput, target_mask: torch.Tensor) -> np.ndarray:
        """One map per row of `target_mask`.

        Args:
            example: the teacher-forced input (batch of one).
            target_mask: [P, L]; row p marks the tokens of phrase p.

        Returns:
            [P, g, g] float32 maps on the layer's patch grid, finite (non-negative when `relu`).
        """
        device = next(self.model.parameters()).device
        pixel_values = example.pixel_values.to(device)
        with attribution_mode(self.model):
            if self._layer is None:
                self.layer_name, self._layer = resolve_layer(self.model, self.settings.layer,
                                                             pixel_values.to(_dtype(self.model)))
                logger.info("Grad-CAM layer: vision_tower.%s", self.layer_name)
            chunks = []
            for start in range(0, target_mask.shape[0], max(1, self.settings.phrase_batch_size)):
                rows = target_mask[start:start + self.settings.phrase_batch_size].to(device)
                chunks.append(self._attribute(pixel_values, example, rows))
        maps = torch.cat(chunks).float()
        if not torch.isfinite(maps).all():  # e.g. a half-precision overflow; say so rather than hide it
            logger.warning("%d non-finite Grad-CAM values set to 0 (try float32 weights)", int((~torch.isfinite(maps)).sum()))
            maps = torch.nan_to_num(maps, nan=0.0, posinf=0.0, neginf=0.0)
        return maps.cpu().numpy()

    def _attribute(self, pixel_values: torch.Tensor, example: TeacherForcedInput, rows: torch.Tensor) -> torch.Tensor:
        count = rows.shape[0]
        device = rows.device
        inputs = pixel_values.to(_dtype(self.model)).expand(count, -1, -1, -1).clone()
        extra = (example.input_ids.to(device).expand(count, -1), example.attention_mask.to(device).expand(count, -1),
                 rows)
        if self.settings.method == "gradcam":
            method, options = LayerGradCam(self._forward, self.grid_module), {"relu_attributions": self.settings.relu}
        else:
            method, options = LayerGradientXActivation(self._forward, self.grid_module), {}
        with tokens_as_grid(self._layer, self.grid_module, self.settings.num_prefix_tokens):
            if self.settings.smoothing_samples > 0:
                attributions = NoiseTunnel(method).attribute(
                    inputs, nt_type="smoothgrad", nt_samples=self.settings.smoothing_samples,
                    stdevs=self.settings.smoothing_std, additional_forward_args=extra, **options)
            else:
                attributions = method.attribute(inputs, additional_forward_args=extra, **options)
        if self.settings.method == "gradient_x_activation":  # [P, C, g, g] -> [P, 1, g, g]
            attributions = attributions.sum(1, keepdim=True)
            attributions = attributions.clamp_min(0) if self.settings.relu else attributions
        return attributions.detach()[:, 0]  # [P, g, g]

    def _forward(self, pixel_values, input_ids, attention_mask, target_mask) -> torch.Tensor:
        return phrase_log_probability(self.model, pixel_values, input_ids, attention_mask, target_mask)


def _dtype(model: nn.Module) -> torch.dtype:
    return next(model.parameters()).dtype
