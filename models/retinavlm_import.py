"""Import the released RetinaVLM weights as a registry model: a standard LLaVA directory.

`import_retinavlm(source, llm, output_dir, name)` reads the release's shards lazily (shard
headers first, then one tensor at a time), dequantises the int8 Llama weights row-wise, renames
everything into transformers' `LlavaForConditionalGeneration` layout and streams it into new
safetensors shards, so peak memory is about one output shard plus one tensor, whatever the model
size. The result loads with `models.load_vlm` (the ResNet tower is registered by importing
`models`; no remote code) and runs on CPU in bf16 or fp32, or in 8 bit on CUDA under the
`adapter` policy, like the project's own models.

Layout choices: the reference's single `llama_proj` (2048 -> 4096, with bias) becomes LLaVA's
`linear_1`, with `projector_hidden_act: linear` and `linear_2` the identity, which reproduces it
exactly; `lm_head` stays untied; the image placeholder is a reserved Llama-3 token (see
`models.retinavlm_prompt`). The output is written to a temporary sibling folder and renamed into
place only when complete; the registry entry is written last.
"""

from __future__ import annotations

import logging
import resource
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from safetensors import safe_open
from transformers import (
    AutoConfig,
    AutoTokenizer,
    GenerationConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
)

from models.model_files import atomic_folder
from models.registry import REGISTRY_DIR, load_registry_entry
from models.resnet_tower import RetinaResNetConfig, register_resnet_tower
from models.retinavlm_checkpoint import (
    CheckpointError,
    CheckpointPlan,
    dequantise_rowwise,
    list_tensors,
    plan_checkpoint,
    vision_layout,
)
from models.retinavlm_card import write_model_card, write_registry_entry
from models.retinavlm_prompt import IMAGE_SIZE, build_retinavlm_processor
from models.safetensors_shards import ShardWriter
from models.tokenizer import end_of_turn_ids

logger = logging.getLogger(__name__)
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
MAX_NEW_TOKENS = 750  # the reference's generation budget


def build_llava_config(plan: CheckpointPlan, text_config, image_token_id: int, dtype: str) -> LlavaConfig:
    """The LLaVA config of the imported model: the ResNet sizes read off the checkpoint, the LLM's
    own config (untied lm_head), a linear projector, 36 image tokens at 192 px."""
    vision_config = RetinaResNetConfig(**vision_layout(plan))
    text_config.tie_word_embeddings = False
    text_config.dtype = dtype
    side = IMAGE_SIZE // 32  # the ResNet's total stride
    return LlavaConfig(vision_config=vision_config, text_config=text_config, image_token_id=image_token_id,
                       image_seq_length=side * side, projector_hidden_act="linear",
                       multimodal_projector_bias=True, vision_feature_layer=-1,
                       vision_feature_select_strategy="full", tie_word_embeddings=False, dtype=dtype)


def expected_tensors(config: LlavaConfig) -> tuple[dict[str, torch.Size], int]:
    """Name -> shape of every tensor the LLaVA model holds (parameters and buffers), and its
    parameter count, from a meta-device build (no memory)."""
    register_resnet_tower()
    with torch.device("meta"):
        model = LlavaForConditionalGeneration(config)
    shapes = {name: tensor.shape for name, tensor in model.state_dict().items()}
    return shapes, sum(p.numel() for p in model.parameters())


def check_plan(plan: CheckpointPlan, expected: dict[str, torch.Size]) -> None:
    """Every model tensor has a source of the right shape, and every source a place.

    Raises:
        CheckpointError: a shape that does not fit (naming file and key), or a tensor missing.
    """
    synthesised = {"model.multi_modal_projector.linear_2.weight", "model.multi_modal_projector.linear_2.bias"}
    for planned in plan.planned:
        want, info = expected.get(planned.target), planned.source
        if want is None:
            raise CheckpointError(f"{info.file}: {info.key} maps to {planned.target}, which the LLaVA model "
                                  "does not have (are there more layers than the LLM config says?)")
        if tuple(want) != info.shape:
            raise CheckpointError(f"{info.file}: {info.key} has shape {list(info.shape)} but "
                                  f"{planned.target} needs {list(want)}; the LLM folder's config must be the "
                                  "one the checkpoint was trained with (Meta-Llama-3-8B-Instruct)")
    missing = sorted(set(expected) - {p.target for p in plan.planned} - synthesised)
    if missing:
        raise CheckpointError(f"{len(missing)} tensor(s) of the model are in no shard, e.g. {missing[:3]}; "
                              "the release is incomplete or the LLM config has more layers than the "
                              "checkpoint")


def stream_tensors(plan: CheckpointPlan, writer: ShardWriter, dtype: torch.dtype, hidden_size: int) -> int:
    """Convert the source tensors shard by shard into `writer`; returns how many were dequantised."""
    dequantised = 0
    for path in plan.files:
        wanted = [p for p in plan.planned if p.source.file == path]
        with safe_open(str(path), framework="pt") as handle:
            for planned in wanted:
                tensor = handle.get_tensor(planned.source.key)
                if planned.scale_key is not None:
                    tensor = dequantise_rowwise(tensor, plan.scales[planned.scale_key])
                    dequantised += 1
                if tensor.is_floating_point():
                    tensor = tensor.to(dtype)
                writer.add(planned.target, tensor)
                del tensor
        logger.info("converted %d tensors from %s", len(wanted), path.name)
    # LLaVA's projector is linear_2(act(linear_1(x))): identity activation and linear_2 make it
    # exactly the reference's single layer.
    writer.add("model.multi_modal_projector.linear_2.weight", torch.eye(hidden_size, dtype=dtype))
    writer.add("model.multi_modal_projector.linear_2.bias", torch.zeros(hidden_size, dtype=dtype))
    return dequantised


def _load_llm_folder(llm: Path):
    if not (llm / "config.json").is_file():
        raise FileNotFoundError(f"{llm}/config.json missing; give llm=<a Meta-Llama-3-8B-Instruct folder> "
                                "(its config and tokenizer are read; its weights are not needed)")
    text_config = AutoConfig.from_pretrained(llm)
    if text_config.model_type != "llama":
        raise ValueError(f"{llm}/config.json is a {text_config.model_type!r} model; RetinaVLM's LLM is "
                         "Llama-3")
    return text_config, AutoTokenizer.from_pretrained(llm)


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (Linux VmHWM, which, unlike ru_maxrss, does not
    carry over a parent's peak across fork and exec)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def import_retinavlm(source: str | Path, llm: str | Path, output_dir: str | Path, name: str,
                     dtype: str = "bfloat16", registry_dir: str | Path | None = None,
                     registry_path: str | None = None, overwrite: bool = False,
                     ignore_keys: Sequence[str] = (), max_shard_bytes: int = 2 * 1024**3,
                     image_token: str | None = None, created_by: str | None = None) -> dict[str, Any]:
    """Import a RetinaVLM release into a standard Hugging Face LLaVA directory and the registry.

    Args:
        source: the release folder (`RetinaVLM-Specialist` or `RetinaVLM-Base`).
        llm: the Llama-3-8B-Instruct folder the release was trained on (config and tokenizer only).
        output_dir: the model directory to create.
        name: the registry name (`retinavlm-specialist`).
        dtype: bfloat16, float16 or float32 for the written floating-point weights.
        registry_dir: where `<name>.yaml` goes; None writes no entry.
        registry_path: the `path:` to write into a new entry (e.g. `${paths.model_dir}/<name>`).
        overwrite: replace an existing output directory.
        ignore_keys: regexes of source keys to drop knowingly.
        max_shard_bytes: output shard size; about the peak memory of the conversion.
        image_token: the placeholder token; default the last reserved Llama-3 token.
        created_by: the command that made it, for the registry entry and card.

    Returns:
        A report: what was found (tensor groups, dtypes, aliases skipped, keys dropped, notes), what
        was written, seconds and peak resident memory (MB) of this process so far.

    Raises:
        CheckpointError: unexpected checkpoint content (the file and key are named).
        FileExistsError: the output exists and `overwrite` is false.
        ValueError: unknown dtype, or an LLM folder that is not Llama.
    """
    started = time.perf_counter()
    source, llm, output_dir = Path(source), Path(llm), Path(output_dir)
    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is unknown; use one of {sorted(DTYPES)}")
    if output_dir.exists() and not overwrite:
        raise FileExistsError(f"{output_dir} exists; pass overwrite=true to replace it")
    plan = plan_checkpoint(list_tensors(source), ignore_keys)
    text_config, tokenizer = _load_llm_folder(llm)
    processor = build_retinavlm_processor(tokenizer, image_token=image_token)
    image_token_id = tokenizer.convert_tokens_to_ids(processor.image_token)
    config = build_llava_config(plan, text_config, image_token_id, dtype)
    expected, parameters = expected_tensors(config)
    check_plan(plan, expected)
    _log_findings(source, plan)
    _check_disk(output_dir.parent, plan, config, DTYPES[dtype])

    with atomic_folder(output_dir) as staging:
        writer = ShardWriter(staging, max_shard_bytes)
        dequantised = stream_tensors(plan, writer, DTYPES[dtype], config.text_config.hidden_size)
        shards = writer.finish()
        config.save_pretrained(staging)
        _generation_config(tokenizer).save_pretrained(staging)
        processor.save_pretrained(staging)
        report = _report(source, llm, output_dir, name, plan, dtype, dequantised, shards, writer.total_bytes)
        report["parameters"] = parameters
        write_model_card(staging, report, created_by)
    if registry_dir is not None:
        entry = write_registry_entry(Path(registry_dir), name, registry_path or str(output_dir), created_by,
                                     source)
        report["registry_entry"] = str(entry)
    report["seconds"] = round(time.perf_counter() - started, 2)
    report["peak_rss_mb"] = round(peak_rss_mb(), 1)
    logger.info("imported %s into %s in %.1f s (peak resident memory %.0f MB)", source, output_dir,
                report["seconds"], report["peak_rss_mb"])
    return report


def _log_findings(source: Path, plan: CheckpointPlan) -> None:
    logger.info("%s: %d tensors in %d shard(s); dtypes %s; groups %s; %d int8 weights with row scales",
                source, sum(plan.dtypes.values()), len(plan.files), dict(plan.dtypes), dict(plan.groups),
                len(plan.scales))
    if plan.aliases_skipped:
        logger.info("skipped %d alias key(s) of tensors also stored under their canonical name, e.g. %s",
                    len(plan.aliases_skipped), plan.aliases_skipped[0])
    for key in plan.dropped:
        logger.warning("dropped %s (ignore_keys or recomputed by transformers)", key)
    for note in plan.notes:
        logger.warning("unexpected: %s", note)


def _check_disk(folder: Path, plan: CheckpointPlan, config: LlavaConfig, dtype: torch.dtype) -> None:
    element = torch.empty((), dtype=dtype).element_size()
    hidden = config.text_config.hidden_size
    elements = sum(int(torch.Size(p.source.shape).numel()) for p in plan.planned) + hidden * hidden
    needed = elements * element
    probe = folder if folder.exists() else next((p for p in folder.parents if p.exists()), Path("/"))
    free = shutil.disk_usage(probe).free
    if free < needed * 1.05:
        raise OSError(f"{probe}: {free / 1e9:.1f} GB free, the imported model needs {needed / 1e9:.1f} GB; "
                      "free space or choose output_dir elsewhere")


def _generation_config(tokenizer) -> GenerationConfig:
    """Greedy, up to 750 new tokens, stopping at <|eot_id|> (and end-of-text), as the reference."""
    stop = end_of_turn_ids(tokenizer)
    end_of_text = tokenizer.convert_tokens_to_ids("<|end_of_text|>")
    if isinstance(end_of_text, int) and end_of_text != tokenizer.unk_token_id and end_of_text not in stop:
        stop.append(end_of_text)
    return GenerationConfig(bos_token_id=tokenizer.bos_token_id, eos_token_id=stop,
                            pad_token_id=tokenizer.pad_token_id, do_sample=False,
                            max_new_tokens=MAX_NEW_TOKENS)


def _report(source, llm, output_dir, name, plan: CheckpointPlan, dtype, dequantised, shards,
            total_bytes) -> dict:
    return {"name": name, "source": str(source), "llm": str(llm), "output_dir": str(output_dir),
            "dtype": dtype, "source_tensors": sum(plan.dtypes.values()), "source_dtypes": dict(plan.dtypes),
            "source_files": [p.name for p in plan.files], "groups": dict(plan.groups),
            "int8_dequantised": dequantised, "aliases_skipped": len(plan.aliases_skipped),
            "dropped": list(plan.dropped), "unexpected": list(plan.notes),
            "written_tensors": len(plan.planned) + 2, "written_shards": shards, "written_bytes": total_bytes}


def run_import(cfg) -> dict[str, Any]:
    """What `run/import_retinavlm.py` does: `import_retinavlm` with the composed config's values.

    A default `output_dir` (`${paths.model_dir}/<name>`) goes into a new registry entry unresolved,
    so the entry follows `paths.model_dir` like the project's other models.

    Args:
        cfg: the composed `import_retinavlm` config.

    Returns:
        The import report.
    """
    raw_output = str(OmegaConf.to_container(cfg, resolve=False)["output_dir"])
    name = str(cfg.name)
    default_output = raw_output == "${paths.model_dir}/${name}"
    registry_path = f"${{paths.model_dir}}/{name}" if default_output else str(cfg.output_dir)
    registry_dir = cfg.get("registry_dir") or REGISTRY_DIR
    created_by = f"python run/import_retinavlm.py source={cfg.source} llm={cfg.llm} name={name}"
    report = import_retinavlm(
        cfg.source, cfg.llm, cfg.output_dir, name, dtype=str(cfg.dtype), registry_dir=registry_dir,
        registry_path=registry_path, overwrite=bool(cfg.overwrite), ignore_keys=list(cfg.ignore_keys or []),
        max_shard_bytes=int(float(cfg.max_shard_gb) * 1024**3), image_token=cfg.get("image_token"),
        created_by=created_by)
    entry = load_registry_entry(name, OmegaConf.create({"paths": cfg.paths, "registry_dir": str(registry_dir)}))
    registered = Path(str(entry.path)).expanduser().resolve()
    if registered != Path(report["output_dir"]).expanduser().resolve():
        # An entry that existed before (e.g. the shipped one) is kept: say that it points elsewhere.
        report["registry_note"] = (
            f"{report['registry_entry']} points at {registered}, not at this import ({report['output_dir']}); "
            f"pass pretrained_models={name} pretrained_models.path={report['output_dir']}, edit that entry's "
            "path, or import under another name=")
        logger.warning("%s", report["registry_note"])
    return report
