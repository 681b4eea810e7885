"""The models an evaluation asks: registry entries behind one small interface.

A `VisionAnswerer` answers questions about images (free text) and, when it can see its own token
probabilities, scores answer options. Local Hugging Face image-text-to-text directories (the
trained specialist, LLaVA-Med conversions) support both; OpenAI-compatible vision endpoints
(gpt-4o, vLLM, `transformers serve`) answer in text only.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from curriculum.backends.base import BackendError
from dataset.secrets import redact
from evaluation.answer_cache import CACHE_FOLDER, AnswerCache, answer_key
from models.precision import autocast, resolve_mixed_precision
from models.prompting import resolve_repetition_penalty
from models.registry import ResolvedModel, open_model, resolve_model

logger = logging.getLogger(__name__)

#: `<paths.output_dir>/report_cache/<model>.jsonl`: reports of local models, reused by later runs
REPORT_CACHE_FOLDER = "report_cache"


@runtime_checkable
class VisionAnswerer(Protocol):
    """A model under evaluation."""

    name: str
    #: whether `score_options` works (needs the model's token probabilities).
    supports_likelihood: bool

    def generate(self, images: Sequence[Image.Image], questions: Sequence[str]) -> list[str]:
        """One free-text answer per (image, question)."""
        ...

    def score_options(self, images: Sequence[Image.Image], question: str, options: Sequence[str],
                      end_of_turn: bool = True) -> np.ndarray:
        """[num_images, num_options] option log-probabilities (summed, or per token)."""
        ...

    def close(self) -> None:
        ...


class LocalVisionModel:
    """A local Hugging Face image-text-to-text model (opened by `models.registry.open_model`).

    `mixed_precision` is a resolved precision (`no`, `bf16`, `fp16`; `models.precision`): option
    scoring runs under that autocast, the weights stay as loaded; generation stays in the weights'
    precision. Generation is greedy, with `repetition_penalty` on the tokens an answer has already
    written (`models.generate_answers`).
    """

    supports_likelihood = True

    def __init__(self, name: str, model, processor, batch_size: int = 8, max_new_tokens: int = 128,
                 score_batch_size: int = 32, option_score: str = "sum", identity: str | None = None,
                 report_cache: AnswerCache | None = None, mixed_precision: str = "no",
                 repetition_penalty: float = 1.0):
        self.name = name
        self.mixed_precision = mixed_precision
        #: what this model's greedy text depends on (`local_model_identity`), with its settings
        self.identity = identity
        #: reports written by this exact model before (`evaluation.answer_modes.ReportCache`)
        self.report_cache = report_cache
        self.model, self.processor = model, processor
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.repetition_penalty = repetition_penalty
        self.score_batch_size = score_batch_size
        self.option_score = option_score

    def generate(self, images: Sequence[Image.Image], questions: Sequence[str]) -> list[str]:
        from models import generate_answers

        # Always float32: a decoding step is one token per row, and autocast would cast every
        # weight to bf16 again at each step (20% fewer reports/s under bf16 on 2 cores).
        return generate_answers(self.model, self.processor, list(images), list(questions),
                                max_new_tokens=self.max_new_tokens, batch_size=self.batch_size,
                                progress=len(images) > self.batch_size, repetition_penalty=self.repetition_penalty)

    def score_options(self, images: Sequence[Image.Image], question: str, options: Sequence[str],
                      end_of_turn: bool = True) -> np.ndarray:
        from evaluation.likelihood import score_options

        with self._autocast():
            return score_options(self.model, self.processor, images, question, options,
                                 batch_size=self.score_batch_size, progress=len(images) > self.batch_size,
                                 end_of_turn=end_of_turn, reduction=self.option_score)

    def score_questions(self, images: Sequence[Image.Image], questions: Sequence[str],
                        options: Sequence[Sequence[str]], end_of_turn: Sequence[bool]) -> list[np.ndarray]:
        """`score_options` for several questions, each image's shared prompt start run once
        (`evaluation.likelihood.score_questions`)."""
        from evaluation.likelihood import score_questions

        with self._autocast():
            return score_questions(self.model, self.processor, images, questions, options,
                                   batch_size=self.score_batch_size, progress=len(images) > self.batch_size,
                                   end_of_turn=end_of_turn, reduction=self.option_score)

    def _autocast(self):
        return autocast(self.mixed_precision, next(self.model.parameters()).device)

    def close(self) -> None:
        self.model = self.processor = None


def local_model_identity(path: Path, max_new_tokens: int, repetition_penalty: float = 1.0) -> str:
    """A key for the greedy text a local model folder writes: its weights' identity
    (`models.model_files.weights_identity`: config, each weight file's name, size and modification
    time), the token limit and the repetition penalty (named only when it is not 1, so reports
    written without one keep their key)."""
    from models.model_files import weights_identity

    settings = f"max_new_tokens={max_new_tokens}"
    if float(repetition_penalty) != 1.0:
        settings += f"\x1frepetition_penalty={float(repetition_penalty)!r}"
    return hashlib.sha256(f"{weights_identity(path)}\x1f{settings}".encode()).hexdigest()


def image_png(image: Image.Image) -> bytes:
    """The image as RGB PNG bytes (what is sent, and what the answer cache hashes)."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def image_pixels(image: Image.Image) -> bytes:
    """The image's RGB size and pixels as bytes: what a local model sees, for cache keys (100x faster
    than encoding a PNG: 0.1 against 15 ms for a 192-px scan)."""
    rgb = image.convert("RGB")
    return f"{rgb.width}x{rgb.height}:".encode("ascii") + rgb.tobytes()


def image_data_url(image: Image.Image | bytes) -> str:
    """A PNG data URL of an image (or of PNG bytes), as OpenAI-style vision messages carry images."""
    png = image if isinstance(image, bytes) else image_png(image)
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


class OpenAIVisionModel:
    """An OpenAI-compatible chat endpoint that accepts images (gpt-4o, vLLM, `transformers serve`).

    The API key comes from `dataset.secrets` (environment or paths config) and never leaves
    the client: errors are re-raised with it scrubbed. With a `cache`, every answer is stored as
    it arrives and only uncached (model, image, prompt) requests are sent
    (`evaluation.answer_cache`).
    """

    supports_likelihood = False

    def __init__(self, name: str, model: str, base_url: str | None, paths_cfg: Mapping[str, Any] | None,
                 max_new_tokens: int = 128, concurrency: int = 4, timeout_s: float = 120.0,
                 api_key_env: str = "OPENAI_API_KEY", temperature: float = 0.0, cache: AnswerCache | None = None):
        from curriculum.backends.openai_client import build_openai_client, openai_api_key

        # A self-hosted server usually needs no key; a placeholder is sent then.
        key = openai_api_key(paths_cfg, api_key_env, required=not base_url, model=model)
        self.name = name
        self.model = model
        self.max_new_tokens = max_new_tokens
        self.concurrency = max(1, concurrency)
        self.temperature = temperature
        self.client = build_openai_client(key, base_url, timeout_s, max_retries=3)
        self.cache = cache

    def _ask(self, image: Image.Image | bytes, question: str) -> str:
        # Image first, then the question: the order the specialist's own prompts use.
        content = [{"type": "image_url", "image_url": {"url": image_data_url(image)}},
                   {"type": "text", "text": question}]
        try:
            reply = self.client.chat.completions.create(
                model=self.model, messages=[{"role": "user", "content": content}],
                max_tokens=self.max_new_tokens, temperature=self.temperature)
        except Exception as err:  # noqa: BLE001 - re-raised below with any secret scrubbed
            raise BackendError(f"{self.name}: request to the vision endpoint at {self.client.base_url} "
                               f"failed: {redact(err)}") from None
        return (reply.choices[0].message.content or "").strip()

    def generate(self, images: Sequence[Image.Image], questions: Sequence[str]) -> list[str]:
        """Answers for every (image, question); cached ones are not asked again.

        Raises:
            BackendError: some requests failed (after the client's retries); the answers that
                did arrive are already in the cache, so a rerun asks only for the others.
        """
        pngs = [image_png(image) for image in images]
        settings = {"max_tokens": self.max_new_tokens, "temperature": self.temperature}
        keys = [answer_key(str(self.client.base_url), self.model, png, q, settings) for png, q in zip(pngs, questions)]
        answers: list[str | None] = [self.cache.get(k) if self.cache else None for k in keys]
        missing = [i for i, answer in enumerate(answers) if answer is None]
        if self.cache is not None and len(missing) < len(answers):
            logger.info("%s: %d of %d answers from %s", self.name, len(answers) - len(missing), len(answers),
                        self.cache.path)
        errors = []
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = {pool.submit(self._ask, pngs[i], questions[i]): i for i in missing}
            for future in as_completed(futures):
                i = futures[future]
                try:
                    answers[i] = future.result()
                except BackendError as err:
                    errors.append(str(err))
                    continue
                if self.cache is not None:
                    self.cache.put(keys[i], answers[i], model=self.model, name=self.name, prompt=questions[i])
        if errors:
            kept = (f"; the {len(missing) - len(errors)} answers that arrived are cached in {self.cache.path}: "
                    "rerun to ask only for the missing ones") if self.cache is not None else ""
            raise BackendError(f"{len(errors)} of {len(missing)} requests to {self.name} failed "
                               f"(first: {errors[0]}){kept}")
        return [str(a) for a in answers]

    def score_options(self, images, question, options, end_of_turn: bool = True) -> np.ndarray:
        raise NotImplementedError(f"{self.name} is an API endpoint without token probabilities; use "
                                  "answer_mode=two_step or direct for it")

    def close(self) -> None:
        self.client.close()


def _answer_cache(name: str, paths_cfg: Mapping[str, Any] | None, generation_cfg: Mapping[str, Any],
                  setting: str = "api_cache_dir", default_folder: str = CACHE_FOLDER) -> AnswerCache | None:
    """A model's answer cache: the folder in `setting` of the generation settings (`api_cache_dir`
    for API answers, `report_cache_dir` for local models' reports), else
    `<paths.output_dir>/<default_folder>`; `false` (or no paths) turns it off."""
    folder = generation_cfg.get(setting)
    if folder is False or str(folder).lower() == "false":
        return None
    if not folder:
        output_dir = paths_cfg.get("output_dir") if paths_cfg is not None else None
        if not output_dir:
            return None
        folder = Path(str(output_dir)) / default_folder
    from dataset.naming import safe_file_name

    return AnswerCache(Path(str(folder)) / f"{safe_file_name(name)}.jsonl")


def build_answerer(entry_cfg: Mapping[str, Any], paths_cfg: Mapping[str, Any] | None,
                   generation_cfg: Mapping[str, Any],
                   settings_key: str = "evaluation.generation") -> VisionAnswerer:
    """Resolve a registry entry and open it for evaluation.

    Args:
        entry_cfg: a `configs/pretrained_models/<name>.yaml` entry.
        paths_cfg: the `paths` config (API key lookup).
        generation_cfg: `batch_size`, `score_batch_size`, `max_new_tokens`, `concurrency`, `device`,
            `option_score` (`sum` or `mean`, likelihood mode), `mixed_precision` (local models'
            option scoring: `no`, `bf16`, `fp16` or `auto`, `models.precision`; absent = `no`),
            `repetition_penalty` (local models' generation, >= 1; absent = 1, none).
        settings_key: where `generation_cfg` sits in the run's config (named in errors).

    Raises:
        dataset.errors.ConfigError: an unknown `mixed_precision`, or a `repetition_penalty` below 1.
        ValueError: the entry is `new` (an untrained build has nothing to evaluate).
        models.registry.ModelNotFoundError: a local directory is missing (the message says how to make it).
    """
    resolved: ResolvedModel = resolve_model(entry_cfg)
    batch_size, max_new_tokens = int(generation_cfg["batch_size"]), int(generation_cfg["max_new_tokens"])
    if resolved.kind == "local":
        # The likelihood settings are optional: runs that only generate (open-ended evaluation, the
        # inference demo) leave them out and never score options.
        scoring = {key: cast(generation_cfg[key]) for key, cast in (("score_batch_size", int),
                                                                    ("option_score", str)) if key in generation_cfg}
        precision = resolve_mixed_precision(generation_cfg.get("mixed_precision", "no"),
                                            f"{settings_key}.mixed_precision")
        penalty = resolve_repetition_penalty(generation_cfg.get("repetition_penalty"),
                                             f"{settings_key}.repetition_penalty")
        model, processor = open_model(resolved, device=generation_cfg["device"])
        logger.info("%s: option scoring in %s (mixed_precision=%s)", resolved.name,
                    "float32" if precision == "no" else f"{precision} autocast",
                    generation_cfg.get("mixed_precision", "no"))
        return LocalVisionModel(resolved.name, model, processor, batch_size=batch_size,
                                max_new_tokens=max_new_tokens, **scoring, mixed_precision=precision,
                                repetition_penalty=penalty,
                                identity=local_model_identity(Path(resolved.path), max_new_tokens, penalty),
                                report_cache=_answer_cache(resolved.name, paths_cfg, generation_cfg,
                                                           "report_cache_dir", REPORT_CACHE_FOLDER))
    if resolved.kind == "openai":
        options = resolved.options
        return OpenAIVisionModel(resolved.name, model=str(options.get("model")),
                                 base_url=options.get("base_url"), paths_cfg=paths_cfg,
                                 max_new_tokens=max_new_tokens,
                                 concurrency=int(generation_cfg["concurrency"]),
                                 api_key_env=str(options.get("api_key_env") or "OPENAI_API_KEY"),
                                 cache=_answer_cache(resolved.name, paths_cfg, generation_cfg))
    raise ValueError(f"pretrained_models={resolved.name} is a fresh untrained build; evaluate a trained "
                     "model, e.g. pretrained_models=specialist_v5_192px")
