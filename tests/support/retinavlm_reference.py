"""A tiny synthetic RetinaVLM release and an independent re-implementation of its forward pass.

`write_synthetic_release` writes what the released checkpoint looks like (same key names, int8
linear weights with `.SCB` and `.weight_format`, fp16 embeddings and norms, fp32 vision and
projector, batch-norm buffers, a safetensors index over two shards) at tiny sizes: the ResNet at
its full [3, 4, 6, 3] block structure with few channels, a 2-layer Llama with non-square
projections (grouped-query k/v, MLP 64 <-> 96, projector 128 -> 64). It also writes the "LLM
folder" (config and tokenizer only, as the importer reads it).

`reference_logits` is the reference's forward pass written out here, independently of the
importer: dequantise row-wise, run the reference-layout ResNet, `view(B, -1, C)`, the linear
projector, and the prompt assembled as the reference did (Llama-3 template, `<Img>` as text,
split at the image, tokenised in two pieces, embeddings concatenated).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SYSTEM = "You are a helpful ophthalmological specialist chatbot capable of interpreting retinal OCT images."
# Llama-3-Instruct's published chat template (content trimmed, bos first).
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
TEXTS = ["What is the AMD stage of this scan?", "Is there any subretinal fluid in this scan?",
         "Here is an encoding of a retinal OCT image <Img></Img>.", "The scan shows drusen and fluid.",
         "Write a full report of this scan.", "healthy early intermediate late dry wet inactive active"] * 3
WIDTHS = {"stem": 8, "planes": [4, 8, 16, 32]}  # outputs 16, 32, 64, 128 channels
BLOCKS = [3, 4, 6, 3]
LLAMA = {"hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "max_position_embeddings": 256, "rope_theta": 500000.0,
         "tie_word_embeddings": False}
LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def llama3_like_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level BPE with Llama-3's special tokens (reserved ones included) and chat template."""
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                "<|reserved_special_token_1|>", "<|start_header_id|>", "<|end_header_id|>",
                "<|reserved_special_token_2|>", "<|eot_id|>", "<|reserved_special_token_3|>"]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, min_frequency=1, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(TEXTS, trainer=trainer)
    tokenizer.add_special_tokens(specials)  # ids after the BPE vocabulary, as in Llama-3
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<|begin_of_text|>",
                                      eos_token="<|eot_id|>")
    wrapped.chat_template = LLAMA3_TEMPLATE
    return wrapped


class Bottleneck(nn.Module):
    """The reference's bottleneck block (stride on the 3x3), with its attribute names."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ReferenceResNet(nn.Module):
    """The reference's encoder layout: conv1/bn1/relu/maxpool/layer1..4, one input channel."""

    def __init__(self, stem: int, planes: list[int], blocks: list[int]):
        super().__init__()
        self.conv1 = nn.Conv2d(1, stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = stem
        for index, (width, count) in enumerate(zip(planes, blocks)):
            stride = 1 if index == 0 else 2
            downsample = nn.Sequential(nn.Conv2d(inplanes, width * 4, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(width * 4))
            layers = [Bottleneck(inplanes, width, stride, downsample)]
            layers += [Bottleneck(width * 4, width) for _ in range(count - 1)]
            setattr(self, f"layer{index + 1}", nn.Sequential(*layers))
            inplanes = width * 4

    def feature_tokens(self, images: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # [B, C, 6, 6]
        return x.view(x.shape[0], -1, x.shape[1])  # the reference's token order: no permute


def quantise_rowwise(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """bitsandbytes' LLM.int8 storage: int8 codes and one absmax scale (SCB) per output row."""
    scb = weight.abs().amax(dim=1).clamp(min=1e-8).float()
    codes = torch.round(weight.float() * 127 / scb[:, None]).clamp(-127, 127).to(torch.int8)
    return codes, scb


def dequantise_rowwise(codes: torch.Tensor, scb: torch.Tensor) -> torch.Tensor:
    return codes.float() * scb[:, None] / 127


@dataclass
class SyntheticRelease:
    """The reference model as it computes after loading the synthetic checkpoint."""

    source: Path
    llm_dir: Path
    resnet: ReferenceResNet
    llama: LlamaForCausalLM
    proj: nn.Linear
    tokenizer: PreTrainedTokenizerFast


def _randomise_batch_norms(module: nn.Module, generator: torch.Generator) -> None:
    for bn in module.modules():
        if isinstance(bn, nn.BatchNorm2d):
            bn.weight.data = 0.5 + torch.rand(bn.weight.shape, generator=generator)
            bn.bias.data = 0.1 * torch.randn(bn.bias.shape, generator=generator)
            bn.running_mean = 0.1 * torch.randn(bn.running_mean.shape, generator=generator)
            bn.running_var = 0.5 + torch.rand(bn.running_var.shape, generator=generator)
            bn.num_batches_tracked.fill_(7)


def write_synthetic_release(folder: Path, seed: int = 0, extra: dict | None = None,
                            drop: tuple[str, ...] = (), llama: dict | None = None,
                            widths: dict | None = None) -> SyntheticRelease:
    """Write `folder/RetinaVLM-Specialist` (index + 2 shards) and `folder/llm` (config, tokenizer).

    Args:
        folder: where to write.
        seed: weights seed.
        extra: tensors to add to the second shard (key -> tensor), e.g. unknown keys.
        drop: keys to leave out of the checkpoint.
        llama, widths: LlamaConfig fields and ResNet widths to use instead of the tiny defaults
            (`benchmarks/retinavlm_import_memory.py` writes larger releases).

    Returns:
        The reference modules, computing with the weights the checkpoint stores.
    """
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    tokenizer = llama3_like_tokenizer()
    llm_dir = folder / "llm"
    config = LlamaConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, **{**LLAMA, **(llama or {})})
    widths = widths or WIDTHS
    config.save_pretrained(llm_dir)
    tokenizer.save_pretrained(llm_dir)
    resnet = ReferenceResNet(widths["stem"], widths["planes"], BLOCKS).eval()
    _randomise_batch_norms(resnet, generator)
    llama = LlamaForCausalLM(config).eval()
    proj = nn.Linear(widths["planes"][-1] * 4, config.hidden_size)
    state: dict[str, torch.Tensor] = {}
    for key, value in resnet.state_dict().items():
        state[f"model.visual_encoder.model.{key}"] = value.clone()
    for key, value in llama.state_dict().items():
        name = "model.llm.model." + key  # Llama's own names: model.layers.N..., lm_head
        module = key.rsplit(".", 2)[-2] if key.endswith(".weight") else ""
        if module in LINEARS:
            codes, scb = quantise_rowwise(value)
            value.copy_(dequantise_rowwise(codes, scb))  # the reference computes with these
            base = name[: -len(".weight")]
            state[name], state[f"{base}.SCB"] = codes, scb
            state[f"{base}.weight_format"] = torch.tensor(0, dtype=torch.uint8)  # "row"
        else:
            value.copy_(value.half().float())  # stored in fp16, as the reference loaded Llama-3
            state[name] = value.half()
    state["model.llama_proj.weight"] = proj.weight.detach().clone()
    state["model.llama_proj.bias"] = proj.bias.detach().clone()
    state.update(extra or {})
    for key in drop:
        state.pop(key)
    source = folder / "RetinaVLM-Specialist"
    _write_sharded(state, source)
    return SyntheticRelease(source=source, llm_dir=llm_dir, resnet=resnet, llama=llama, proj=proj,
                            tokenizer=tokenizer)


def _write_sharded(state: dict[str, torch.Tensor], source: Path) -> None:
    """Two shards: vision, projector and layer 0 in the first; the rest in the second. One int8
    weight's SCB lands in the other shard, as size-based sharding can do."""
    source.mkdir(parents=True, exist_ok=True)
    first = {k: v for k, v in state.items()
             if "visual_encoder" in k or "llama_proj" in k or ".layers.0." in k}
    moved = "model.llm.model.model.layers.0.mlp.down_proj.SCB"
    second = {k: v for k, v in state.items() if k not in first or k == moved}
    first.pop(moved, None)
    names = ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")
    weight_map = {}
    for name, part in zip(names, (first, second)):
        save_file({k: v.contiguous() for k, v in part.items()}, str(source / name), metadata={"format": "pt"})
        weight_map.update({k: name for k in part})
    index = {"metadata": {"total_size": sum(v.numel() * v.element_size() for v in state.values())},
             "weight_map": dict(sorted(weight_map.items()))}
    (source / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    (source / "config.json").write_text(json.dumps({"model_type": "RetinaVLM"}))


@torch.no_grad()
def reference_logits(release: SyntheticRelease, image: torch.Tensor, question: str) -> torch.Tensor:
    """The reference forward pass on one uint8 [192, 192] scan: logits [T, V] over the prompt."""
    pixels = image.float()[None, None] / 255  # [1, 1, 192, 192]: one channel, /255, no mean/std
    tokens = release.resnet.feature_tokens(pixels)  # [1, 36, C]
    image_embeds = release.proj(tokens)[0]  # [36, H]
    messages = [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"Here is an encoding of a retinal OCT image.\n{question}"}]
    prompt = release.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                                   chat_template=LLAMA3_TEMPLATE)
    marker = "encoding of a retinal OCT image"
    prompt = prompt.replace(marker, f"{marker} <Img><ImageHere></Img>", 1)
    before, after = prompt.split("<ImageHere>")
    embed = release.llama.get_input_embeddings()
    parts = [embed(torch.tensor(release.tokenizer(p, add_special_tokens=False)["input_ids"]))
             for p in (before, after)]
    inputs = torch.cat([parts[0], image_embeds, parts[1]])[None]  # [1, T, H]
    return release.llama(inputs_embeds=inputs).logits[0]
