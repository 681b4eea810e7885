"""The generation loop of one module: ask for what is missing, validate, store, count.

For each image still missing from the module's store, one chat request asks for
`num_questions` pairs; batches of `batch_size` requests go to the backend (which bounds its own
concurrency), and each batch's kept records and raw responses are committed to the store.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from curriculum.backends import ChatRequest, ChatResponse, LLMBackend, TokenUsage
from curriculum.mentions import stated_stages
from curriculum.modules import ModuleSpec, image_context, request_seed
from curriculum.parsing import QA_JSON_SCHEMA, parse_qa_response
from curriculum.store import DEFAULT_MAX_ATTEMPTS, CurriculumStore, request_key, row_fingerprint
from curriculum.validation import Labels, rejection_reason
from dataset.clinical import BIOMARKERS, is_present
from dataset.errors import SpecialistVLMError
from dataset.qa_records import QARecord
from dataset.secrets import redact

logger = logging.getLogger(__name__)


class GenerationError(SpecialistVLMError, RuntimeError):
    """Generation cannot go on (e.g. every request of a batch failed); rerun to resume."""


@dataclass
class ModuleResult:
    """Counts, tokens and cost of one module's run."""

    module: str
    store: str
    counts: Counter = field(default_factory=Counter)
    usage: TokenUsage = TokenUsage()
    cost_usd: float = 0.0
    seconds: float = 0.0
    records_in_store: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"module": self.module, "store": self.store, "counts": dict(sorted(self.counts.items())),
                "prompt_tokens": self.usage.prompt_tokens, "completion_tokens": self.usage.completion_tokens,
                "cost_usd": round(self.cost_usd, 6), "seconds": round(self.seconds, 3),
                "records_in_store": self.records_in_store}


def cost_usd(usage: TokenUsage, prices: Mapping[str, Any] | None) -> float:
    """Dollar cost of `usage` at `prices` = {input, output} USD per million tokens (none: 0)."""
    if not prices:
        return 0.0
    return (usage.prompt_tokens * float(prices.get("input", 0))
            + usage.completion_tokens * float(prices.get("output", 0))) / 1e6


def _row_dict(row: pd.Series) -> dict[str, Any]:
    """JSON-safe plain values of one annotation row (NaN -> None, numpy scalars -> Python)."""
    plain = {}
    for key, value in row.items():
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, float) and value != value:
            value = None
        plain[str(key)] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
    return plain


def _skip_reason(module: ModuleSpec, row: Mapping[str, Any]) -> str | None:
    report = str(row.get("report") or "").strip()
    if module.source == "report" and not report:
        return "skipped_no_report"
    if module.requires_stated_stage and not stated_stages(report):
        return "skipped_no_stated_stage"
    return None


def _request(module: ModuleSpec, row: dict[str, Any], backend: LLMBackend, seed: int,
             options: Mapping[str, Any]) -> ChatRequest:
    messages = module.render(image_context(row), structured=backend.supports_json)
    return ChatRequest(
        messages=messages, response_format=QA_JSON_SCHEMA if backend.supports_json else None,
        metadata={"kind": module.kind, "row": row, "num_questions": module.num_questions,
                  "seed": request_seed(str(row["image_id"]), module.name, seed), "options": dict(options)})


def _request_options(module: ModuleSpec, table: pd.DataFrame) -> dict[str, Any]:
    """The module's options for the rules builders; with `presence_balance`, also each
    biomarker's prevalence among the module's table rows (`options.prevalence`); with
    `stage_balance`, each stage's share of them (`options.stage_shares`)."""
    options = dict(module.options)
    if options.get("presence_balance") and len(table):
        rows = [_row_dict(series) for _, series in table.iterrows()]
        options["prevalence"] = {b: sum(is_present(row, b) for row in rows) / len(rows) for b in BIOMARKERS}
    if options.get("stage_balance") and len(table):
        options["stage_shares"] = {str(k): float(v) for k, v in table["stage"].value_counts(normalize=True).items()}
    return options


def _records_of(module: ModuleSpec, row: Mapping[str, Any], response: ChatResponse, backend: LLMBackend,
                counts: Counter) -> list[QARecord]:
    parsed = parse_qa_response(response.text, response.finish_reason)
    counts[f"parsed_{parsed.format}"] += 1
    if response.finish_reason == "length":
        counts["responses_truncated"] += 1
    if not parsed.pairs:
        counts["responses_unparseable"] += 1
        if response.finish_reason == "length":
            counts["rejected_truncated"] += 1
        return []
    labels, seen, records = Labels.from_row(row), set(), []
    image_id = str(row["image_id"])
    for qa in parsed.pairs:
        counts["pairs_parsed"] += 1
        reason = rejection_reason(qa, labels, seen)
        if reason:
            counts[f"rejected_{reason}"] += 1
            continue
        index = len(records)
        records.append(QARecord(
            record_id=QARecord.make_id(image_id, module.name, index, backend.source, backend.model),
            image_id=image_id, module=module.name, question=qa.question.strip(), answer=qa.answer.strip(),
            source=backend.source, model=backend.model, prompt_version=module.prompt_version))
    counts["pairs_kept"] += len(records)
    return records


def _raw_line(module: ModuleSpec, image_id: str, response: ChatResponse, backend: LLMBackend,
              kept: int, fingerprint: str) -> dict[str, Any]:
    return {"request_key": request_key(image_id, module.name, backend.source, backend.model), "input_hash": fingerprint,
            "settings_hash": module.settings_hash(), "image_id": image_id, "module": module.name,
            "source": backend.source, "model": backend.model, "prompt_version": module.prompt_version,
            "finish_reason": response.finish_reason, "text": redact(response.text) if response.text else "",
            "raw": _redacted_payload(response.raw), "prompt_tokens": response.usage.prompt_tokens,
            "completion_tokens": response.usage.completion_tokens, "kept": kept, "time": time.time()}


def _redacted_payload(raw: Any) -> Any:
    """The raw payload with any secret a server might echo scrubbed (it is written to disk)."""
    if raw is None:
        return None
    text = json.dumps(raw, ensure_ascii=False, default=str)
    scrubbed = redact(text)
    return raw if scrubbed == text else json.loads(scrubbed)


def generate_module(module: ModuleSpec, table: pd.DataFrame, backend: LLMBackend, curriculum_dir: str | Path,
                    batch_size: int = 64, seed: int = 0, prices: Mapping[str, Any] | None = None,
                    max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> ModuleResult:
    """Fill one module's store for the images of `table`, resuming what a previous run did.

    Args:
        module: the module spec.
        table: annotation rows to cover (already filtered to the wanted splits).
        backend: any `LLMBackend`.
        curriculum_dir: `paths.curriculum_dir`; the store is `<curriculum_dir>/<module name>`.
        batch_size: requests per backend call and per store commit.
        seed: wording seed (rules backend) mixed into each request's seed.
        prices: USD per million tokens, {input, output}, for cost accounting.
        max_attempts: responses that keep no record (unparseable or all rejected) after which an
            image is not asked again; below it, a rerun asks again (counted as `retried_empty`).

    Returns:
        The module's counts, token usage, cost and time.

    Raises:
        GenerationError: every request of a batch failed after retries, or the store holds
            records made from different annotations of the same images (a changed table).
        BackendFatalError: authentication or bad request (from the backend).
    """
    started = time.perf_counter()
    store = CurriculumStore(Path(curriculum_dir) / module.name, max_attempts=max_attempts)
    result = ModuleResult(module=module.name, store=str(store.folder))
    counts = result.counts
    pending, stale, changed, unrecorded = [], [], [], 0
    settings_hash = module.settings_hash()
    for _, series in table.iterrows():
        row = _row_dict(series)
        reason = _skip_reason(module, row)
        key = request_key(str(row["image_id"]), module.name, backend.source, backend.model)
        done_hash = store.done.get(key)
        if reason:
            counts[reason] += 1
        elif done_hash is None:
            pending.append(row)
            if store.empty_attempts[key]:
                counts["retried_empty"] += 1
        elif done_hash and done_hash != row_fingerprint(row):
            stale.append(str(row["image_id"]))
        elif store.settings_of.get(key) not in ("", settings_hash):
            changed.append(str(row["image_id"]))
        elif store.empty_attempts[key] >= store.max_attempts:
            counts["given_up_empty"] += 1
        else:
            counts["already_done"] += 1
            unrecorded += store.settings_of.get(key) == ""
    if stale:
        raise GenerationError(
            f"{store.folder} holds records generated from different annotations for {len(stale)} image(s) "
            f"(e.g. {', '.join(stale[:3])}); the table changed since. Move or delete that folder, or set "
            "paths.curriculum_dir to a new folder, and run again.")
    if changed:
        raise GenerationError(
            f"{store.folder} holds records generated with other settings of module {module.name} for "
            f"{len(changed)} image(s) (e.g. {', '.join(changed[:3])}): {_settings_change(store, module)}. "
            "Move or delete that folder, or set paths.curriculum_dir to a new folder, and run again.")
    if unrecorded:
        logger.warning("module %s: %d image(s) in %s were generated before stores recorded their module's "
                       "settings; if its options, prompt or prompt_version changed since, delete that folder and "
                       "run again", module.name, unrecorded, store.folder)
    logger.info("module %s: %d images to ask, %d already done", module.name, len(pending), counts["already_done"])
    describe_store(module, store, backend, pending, counts)
    options = _request_options(module, table)
    with tqdm(total=len(pending), desc=module.name, unit="img", mininterval=1.0) as bar:
        for start in range(0, len(pending), batch_size):
            batch = pending[start:start + batch_size]
            responses = backend.complete([_request(module, row, backend, seed, options) for row in batch])
            _commit_batch(module, batch, responses, backend, store, result)
            bar.update(len(batch))
    result.cost_usd = cost_usd(result.usage, prices)
    result.records_in_store = len(store.record_ids)
    result.seconds = time.perf_counter() - started
    return result


def _settings_change(store: CurriculumStore, module: ModuleSpec) -> str:
    """What differs between the settings that wrote a store and `module`'s, e.g.
    "options.conclusion: False -> True" (or "settings not recorded" for an unknown hash)."""
    now = _flatten(module.settings())
    before_hashes = {h for h in store.settings_of.values() if h and h != module.settings_hash()}
    changes = []
    for before_hash in sorted(before_hashes):
        if before_hash not in store.known_settings:
            changes.append("settings not recorded")
            continue
        before = _flatten(store.known_settings[before_hash])
        changes += [f"{k}: {_short(before.get(k))} -> {_short(now.get(k))}"
                    for k in sorted(set(before) | set(now)) if before.get(k) != now.get(k)]
    return "; ".join(dict.fromkeys(changes)) or "settings differ"


def _flatten(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in settings.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _short(value: Any) -> str:
    text = "(unset)" if value is None else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def describe_store(module: ModuleSpec, store: CurriculumStore, backend: LLMBackend, pending: list,
                   counts: Counter) -> None:
    """Say what a module's store already holds when this run adds nothing to it, or when other
    backends' records sit beside this one's (training then uses all of them)."""
    mine = (backend.source, backend.model)
    others = {k: v for k, v in store.responses_by_backend.items() if k != mine}
    if not pending and (counts["already_done"] or counts["given_up_empty"]):
        by_backend = Counter((r.source, r.model) for r in store.records())
        held = ", ".join(f"{n} by {s}/{m}" for (s, m), n in sorted(by_backend.items())) or "no records"
        logger.warning(
            "module %s: nothing to ask: %d image(s) were already answered by %s/%s (%d given up after %d "
            "empty responses); %s holds %s. To generate anew, move or delete that folder or set "
            "paths.curriculum_dir to a new folder", module.name, counts["already_done"] + counts["given_up_empty"],
            mine[0], mine[1], counts["given_up_empty"], store.max_attempts, store.folder, held)
    if others:
        listed = ", ".join(f"{s}/{m} ({n} responses)" for (s, m), n in sorted(others.items()))
        logger.warning("module %s: %s also holds records of %s; %s/%s's records go beside them and training "
                       "uses all of them (for %s/%s's records only, set paths.curriculum_dir to a new folder)",
                       module.name, store.folder, listed, mine[0], mine[1], mine[0], mine[1])


def _commit_batch(module: ModuleSpec, batch: list[dict[str, Any]], responses: list[ChatResponse],
                  backend: LLMBackend, store: CurriculumStore, result: ModuleResult) -> None:
    counts = result.counts
    records, raw_lines, failures = [], [], []
    for row, response in zip(batch, responses):
        counts["requests"] += 1
        result.usage = result.usage + response.usage
        if not response.ok:
            counts["requests_failed"] += 1
            failures.append(response.error)
            continue
        kept = _records_of(module, row, response, backend, counts)
        if not kept:
            counts["responses_without_records"] += 1
        records += kept
        raw_lines.append(_raw_line(module, str(row["image_id"]), response, backend, len(kept),
                                   row_fingerprint(row)))
    store.remember_settings(module.settings_hash(), module.settings())
    counts["records_written"] += store.commit(records, raw_lines)
    if failures and len(failures) == len(batch):
        raise GenerationError(f"module {module.name}: all {len(batch)} requests of a batch failed after retries "
                              f"(last: {redact(failures[-1])}); is the server up? Rerun to resume.")
