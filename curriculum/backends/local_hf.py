"""A local Hugging Face causal LM by path (Llama-3-8B-Instruct, WizardLM, ...), batched generation.

No download and no remote code: the path must be a local directory with a chat template. JSON mode
is not enforced here, so prompts ask for the numbered "Q:/A:" text format instead.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from curriculum.backends.base import BackendError, ChatRequest, ChatResponse, TokenUsage

logger = logging.getLogger(__name__)


class LocalHFBackend:
    """Generate with `AutoModelForCausalLM` in left-padded batches.

    Args:
        path: local model directory (config, safetensors weights, tokenizer with chat template).
        name: model name recorded in the QA records.
        batch_size: prompts per `generate` call.
        max_new_tokens, temperature, top_p: generation defaults (temperature 0 = greedy).
        dtype: "auto", "bfloat16", "float16" or "float32".
        device: "auto" (CUDA when available), "cpu", "cuda:0", ...

    Raises:
        BackendError: the path is missing, or lacks safetensors weights (or they are truncated) or
            tokenizer files; the message names what is missing.
    """

    source = "local_hf"
    supports_json = False

    def __init__(self, path: str | Path, name: str | None = None, batch_size: int = 8,
                 max_new_tokens: int = 1024, temperature: float = 0.7, top_p: float = 0.9,
                 dtype: str = "auto", device: str = "auto") -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from models.model_files import IncompleteModelError, check_model_files

        path = Path(path).expanduser()
        fix = ("download the model there (e.g. `hf download <repo> --local-dir <path>`; safetensors weights) "
               "and set model.language_model.path")
        if not (path / "config.json").is_file():
            raise BackendError(f"no Hugging Face model at {path} (config.json missing); {fix}")
        try:  # weights (safetensors, complete), tokenizer: before minutes of loading
            check_model_files(path, processor=False, tokenizer=True, fix=fix)
        except IncompleteModelError as err:
            raise BackendError(f"model.language_model.path: {err}") from None
        self.model = name or path.name
        self.batch_size, self.max_new_tokens = batch_size, max_new_tokens
        self.temperature, self.top_p = temperature, top_p
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        torch_dtype = {"auto": "auto", "bfloat16": torch.bfloat16, "float16": torch.float16,
                       "float32": torch.float32}[dtype]
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.tokenizer.padding_side = "left"  # decoder-only models continue from the right end
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if not self.tokenizer.chat_template:
            raise BackendError(f"the tokenizer at {path} has no chat template; use an instruct model")
        self.network = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, use_safetensors=True,
                                                            trust_remote_code=False).to(self.device).eval()

    def complete(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        """Answer requests in batches of `batch_size`, in order."""
        responses: list[ChatResponse] = []
        for start in range(0, len(requests), self.batch_size):
            responses += self._generate(requests[start:start + self.batch_size])
        return responses

    def close(self) -> None:
        """Drop the model so its memory can be freed."""
        self.network = None

    def _generate(self, batch: list[ChatRequest]) -> list[ChatResponse]:
        import torch

        prompts = [self.tokenizer.apply_chat_template(r.messages, tokenize=False, add_generation_prompt=True)
                   for r in batch]
        inputs = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        inputs = inputs.to(self.device)
        max_new = max(r.max_tokens or self.max_new_tokens for r in batch)
        temperature = batch[0].temperature if batch[0].temperature is not None else self.temperature
        sampling = {"do_sample": True, "temperature": temperature, "top_p": self.top_p} if temperature > 0 \
            else {"do_sample": False}
        with torch.inference_mode():
            output = self.network.generate(**inputs, max_new_tokens=max_new,
                                           pad_token_id=self.tokenizer.pad_token_id, **sampling)
        new_tokens = output[:, inputs["input_ids"].shape[1]:]  # [B, T_new]
        eos_ids = _eos_ids(self.tokenizer, self.network)
        responses = []
        for row, mask in zip(new_tokens, inputs["attention_mask"]):
            ids = row.tolist()
            stopped = next((i for i, t in enumerate(ids) if t in eos_ids), None)
            kept = ids if stopped is None else ids[:stopped]
            text = self.tokenizer.decode(kept, skip_special_tokens=True)
            responses.append(ChatResponse(
                text=text, finish_reason="stop" if stopped is not None else "length",
                usage=TokenUsage(int(mask.sum()), len(kept)), raw={"generated_text": text}))
        return responses


def _eos_ids(tokenizer: Any, network: Any) -> set[int]:
    ids = {tokenizer.eos_token_id}
    configured = getattr(network.generation_config, "eos_token_id", None)
    ids.update(configured if isinstance(configured, list) else [configured])
    return {i for i in ids if i is not None}


def build_local_hf_backend(cfg: Mapping[str, Any]) -> LocalHFBackend:
    """A `LocalHFBackend` from a language-model config with `path`."""
    return LocalHFBackend(
        path=str(cfg["path"]), name=str(cfg["model"]), batch_size=int(cfg["batch_size"]),
        max_new_tokens=int(cfg["max_tokens"]), temperature=float(cfg["temperature"]),
        top_p=float(cfg["top_p"]), dtype=str(cfg["dtype"]), device=str(cfg["device"]))
