"""`generate_curriculum(cfg)`: what the part 1, part 2 and demo entry scripts run.

The config selects the annotation table (`generation.annotations_file`), the module(s)
(`dataset.task.curriculum`), the backend (`model.language_model`) and the splits. The backend is
built right after the run folder, so a missing API key stops the run before any work.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from curriculum.backends import build_backend
from curriculum.generator import ModuleResult, generate_module
from curriculum.modules import load_modules
from dataset.annotations import load_annotations
from dataset.runtime import prepare_run
from dataset.secrets import install_log_redaction
from dataset.splits import select_rows

logger = logging.getLogger(__name__)

SUMMARY_FILE = "curriculum_summary.json"


def generate_curriculum(cfg: DictConfig) -> dict[str, Any]:
    """Generate (or resume) every module the config selects and write a summary.

    Args:
        cfg: a composed `generate_curriculum_part1/part2` or demo config.

    Returns:
        The summary (also written to `<run_dir>/curriculum_summary.json`): per-module counts,
        tokens, cost and time, and totals.

    Raises:
        dataset.secrets.MissingAPIKeyError, curriculum.backends.BackendError,
        curriculum.modules.CurriculumConfigError, dataset.annotations.AnnotationError,
        curriculum.generator.GenerationError: each with the fix in its message.
    """
    run_dir = prepare_run(cfg)
    install_log_redaction()
    started = time.perf_counter()
    modules = load_modules(cfg.dataset.task)
    lm_cfg = cfg.model.language_model
    backend = build_backend(lm_cfg, cfg.paths)
    gen = cfg.generation
    table = load_annotations(gen.annotations_file, images_dir=gen.images_dir,
                             check_images=bool(gen.check_images))
    table = select_rows(table, gen.splits, gen.max_images, setting="generation.splits")
    logger.info("%d images (splits %s) x %d module(s) with %s/%s", len(table), gen.splits, len(modules),
                backend.source, backend.model)
    prices = OmegaConf.to_container(lm_cfg.prices, resolve=True) if lm_cfg.get("prices") else None
    results: list[ModuleResult] = []
    try:
        for module in modules:
            result = generate_module(module, table, backend, cfg.paths.curriculum_dir,
                                     batch_size=int(gen.batch_size), seed=int(cfg.seed), prices=prices,
                                     max_attempts=int(gen.max_attempts))
            results.append(result)
            logger.info("module %s: %d records written, %d in store, %s", module.name,
                        result.counts["records_written"], result.records_in_store, _rejections(result))
    finally:
        backend.close()
    summary = _summary(results, backend, len(table), time.perf_counter() - started)
    status_counts = getattr(backend, "status_counts", None)
    if status_counts:
        summary["http_status_counts"] = {str(k): v for k, v in sorted(status_counts.items())}
    (Path(run_dir) / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
    logger.info("records written: %d (%d in stores), cost %.4f USD, %.1f s; summary: %s",
                summary["records_written"], summary["records_in_stores"], summary["cost_usd"],
                summary["seconds"], Path(run_dir) / SUMMARY_FILE)
    empty = summary["counts"].get("responses_without_records", 0)
    if empty:
        logger.warning("%d response(s) kept no record (unparseable or every pair rejected); a rerun asks for "
                       "them again, up to generation.max_attempts=%s responses per image", empty,
                       gen.max_attempts)
    if summary["records_written"] == 0 and summary["counts"].get("already_done"):
        logger.warning("no new records: every image was already answered by %s/%s in %s (see the module lines "
                       "above); to generate anew, use a new paths.curriculum_dir", backend.source, backend.model,
                       cfg.paths.curriculum_dir)
    failed = summary["counts"].get("requests_failed", 0)
    if failed:
        logger.warning("%d request(s) failed after retries and were not stored; rerun the same command to "
                       "ask for them again", failed)
    if gen.show_examples:
        _log_examples(results, int(gen.show_examples))
    return summary


def _rejections(result: ModuleResult) -> str:
    rejected = {k.removeprefix("rejected_"): v for k, v in result.counts.items() if k.startswith("rejected_")}
    return f"rejected {rejected}" if rejected else "none rejected"


def _summary(results: list[ModuleResult], backend: Any, images: int, seconds: float) -> dict[str, Any]:
    total = sum((r.counts for r in results), start=Counter())
    return {
        "backend": backend.source, "model": backend.model, "images": images,
        "modules": [r.as_dict() for r in results],
        "records_written": total["records_written"],
        "records_in_stores": sum(r.records_in_store for r in results),
        "counts": dict(sorted(total.items())),
        "prompt_tokens": sum(r.usage.prompt_tokens for r in results),
        "completion_tokens": sum(r.usage.completion_tokens for r in results),
        "cost_usd": round(sum(r.cost_usd for r in results), 6),
        "seconds": round(seconds, 3),
    }


def _log_examples(results: list[ModuleResult], count: int) -> None:
    from dataset.qa_records import read_records

    """Log the first record of the first `count` images of each module."""
    for result in results:
        path = Path(result.store) / "records.jsonl"
        shown: set[str] = set()
        for record in read_records(path) if path.exists() else []:
            if record.image_id in shown:
                continue
            shown.add(record.image_id)
            logger.info("[%s] %s\n  Q: %s\n  A: %s", record.module, record.image_id, record.question, record.answer)
            if len(shown) >= count:
                break
