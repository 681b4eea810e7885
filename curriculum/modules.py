"""Curriculum modules from config, their prompts, and the per-image prompt context.

A module config (`configs/dataset/task/curriculum/<name>.yaml`) names its `kind` (the QA it
asks for, and the rules builder that makes the same offline), its `source` (`tabular`
attributes or the specialist `report`), a versioned prompt and the number of questions. The
`all_modules` config nests several module configs under `modules`. Prompt placeholders are
checked when the modules load, before any request is sent.
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any

from curriculum.rules_qa import BUILDERS
from curriculum.rules_qa.findings import describe, name
from dataset.clinical import load_knowledge, present_biomarkers, stage_group
from dataset.errors import ConfigError

SOURCES = ("tabular", "report")
PLACEHOLDERS = {"attributes", "report", "num_questions", "output_format", "staging_guidelines",
                "referral_guidelines", "biomarker_guidelines", "treatment_referral_guidelines"}
REQUIRED = {"tabular": {"attributes", "output_format"}, "report": {"report", "output_format"}}


class CurriculumConfigError(ConfigError):
    """A curriculum module config is incomplete or its prompt uses an unknown placeholder."""


@dataclass(frozen=True)
class ModuleSpec:
    """One curriculum module, ready to render prompts."""

    name: str
    kind: str
    source: str
    prompt_version: str
    num_questions: int
    system_prompt: str
    user_prompt: str
    output_format: Mapping[str, str]
    requires_stated_stage: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)

    def settings(self) -> dict[str, Any]:
        """Everything besides the image's row that decides what this module's requests yield (its
        store records which settings wrote it, so a changed option is not mixed with old records)."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "name"}
        return json.loads(json.dumps(values, sort_keys=True, default=str))

    @cached_property
    def _settings_hash(self) -> str:
        return hashlib.sha1(json.dumps(self.settings(), sort_keys=True).encode()).hexdigest()[:16]

    def settings_hash(self) -> str:
        """A short hash of `settings()` (computed once: every raw response line carries it)."""
        return self._settings_hash

    def render(self, context: Mapping[str, Any], structured: bool) -> list[dict[str, str]]:
        """Chat messages for one image.

        Args:
            context: `image_context(...)` of the image.
            structured: whether the backend enforces JSON (selects the output-format text).
        """
        values = dict(context, num_questions=self.num_questions,
                      output_format=self.output_format["json" if structured else "text"].format(
                          num_questions=self.num_questions))
        return [{"role": "system", "content": self.system_prompt},
                {"role": "user", "content": self.user_prompt.format(**values)}]


def load_modules(task_cfg: Mapping[str, Any]) -> list[ModuleSpec]:
    """The modules a task config selects (one, or several under `curriculum.modules`).

    Raises:
        CurriculumConfigError: missing fields, unknown kind/source, or bad placeholders.
    """
    curriculum = task_cfg.get("curriculum")
    if curriculum is None:
        raise CurriculumConfigError(
            f"dataset/task={task_cfg.get('name')!r} selects no curriculum; use dataset/task=tabular_annotate "
            "or dataset/task=specialist_annotate with dataset/task/curriculum=<module>")
    nested = curriculum.get("modules")
    configs = list(nested.values()) if nested else [curriculum]
    return [_module(c, task_cfg) for c in configs]


def _module(cfg: Mapping[str, Any], task_cfg: Mapping[str, Any]) -> ModuleSpec:
    label = cfg.get("name", "<unnamed>")
    missing = [k for k in ("name", "kind", "source", "prompt_version", "user_prompt") if not cfg.get(k)]
    if missing:
        raise CurriculumConfigError(f"curriculum module {label!r} lacks {', '.join(missing)}")
    if cfg["kind"] not in BUILDERS:
        raise CurriculumConfigError(f"curriculum module {label!r}: unknown kind {cfg['kind']!r}; "
                                    f"known: {', '.join(BUILDERS)}")
    if cfg["source"] not in SOURCES:
        raise CurriculumConfigError(f"curriculum module {label!r}: source must be one of {SOURCES}")
    output_format = cfg.get("output_format") or task_cfg.get("output_format") or {}
    if not {"json", "text"} <= set(output_format):
        raise CurriculumConfigError(f"curriculum module {label!r}: output_format needs 'json' and 'text' texts "
                                    "(set in the task config)")
    spec = ModuleSpec(
        name=str(cfg["name"]), kind=str(cfg["kind"]), source=str(cfg["source"]),
        prompt_version=str(cfg["prompt_version"]), num_questions=int(cfg["num_questions"]),
        system_prompt=str(cfg.get("system_prompt") or task_cfg.get("system_prompt") or ""),
        user_prompt=str(cfg["user_prompt"]), output_format=dict(output_format),
        requires_stated_stage=bool(cfg.get("requires_stated_stage", False)),
        options=dict(cfg.get("options") or {}))
    check_placeholders(spec)
    return spec


def placeholders(template: str) -> set[str]:
    """Field names used in a `str.format` template."""
    return {fieldname for _, fieldname, _, _ in string.Formatter().parse(template) if fieldname is not None}


def check_placeholders(spec: ModuleSpec) -> None:
    """Every placeholder is known, and the ones the module's source needs are used.

    Raises:
        CurriculumConfigError: naming the module, the placeholder and the fix.
    """
    try:
        used = placeholders(spec.user_prompt) | placeholders(spec.system_prompt)
        format_used = set().union(*(placeholders(t) for t in spec.output_format.values()))
    except ValueError as err:
        raise CurriculumConfigError(f"curriculum module {spec.name!r}: malformed prompt ({err}); "
                                    "write literal braces as {{ and }}") from None
    unknown = (used - PLACEHOLDERS) | (format_used - {"num_questions"})
    if unknown:
        raise CurriculumConfigError(f"curriculum module {spec.name!r}: unknown prompt placeholder(s) "
                                    f"{sorted(unknown)}; known: {sorted(PLACEHOLDERS)}")
    lacking = REQUIRED[spec.source] - used
    if lacking:
        raise CurriculumConfigError(f"curriculum module {spec.name!r} (source {spec.source}): the prompt must "
                                    f"use {sorted('{' + p + '}' for p in lacking)}")


def attribute_list(row: Mapping[str, Any]) -> str:
    """Part 1's short attribute list of an image, one '- name: value' line each."""
    import random

    lines = [f"- eye: {row['eye']}"]
    for key, label, fmt in (("age", "age", "{:.0f} years"), ("sex", "sex", "{}"),
                            ("visual_acuity_logmar", "visual acuity", "{:.2f} logMAR"),
                            ("quality", "scanner quality index", "{:.0f}/100")):
        value = row.get(key)
        if value is not None and value == value and str(value) != "":
            lines.append(f"- {label}: " + fmt.format(float(value) if "f}" in fmt else value))
    group = stage_group(str(row["stage"]))
    lines.append(f"- stage group: {group.replace('_', ' ')}")
    rng = random.Random(0)  # fixed wording: the prompt, not the answer, should be stable
    found = [describe(row, b, rng) for b in present_biomarkers(row)]
    lines.append(f"- biomarkers: {'; '.join(found) if found else 'none'}")
    absent = [name(b) for b in load_knowledge().biomarkers if b not in present_biomarkers(row)]
    lines.append(f"- absent: {', '.join(absent) if absent else 'none'}")
    return "\n".join(lines)


def image_context(row: Mapping[str, Any]) -> dict[str, str]:
    """Every placeholder value for one image (guidelines come from `dataset.clinical`)."""
    knowledge = load_knowledge()
    return {
        "attributes": attribute_list(row),
        "report": str(row.get("report") or "").strip(),
        "staging_guidelines": knowledge.staging_guidelines(),
        "referral_guidelines": knowledge.referral_guidelines(),
        "treatment_referral_guidelines": "\n".join(f"- {r.name}: {r.guideline}"
                                                   for r in knowledge.referral_treatment),
        "biomarker_guidelines": knowledge.biomarker_guidelines(),
    }


def request_seed(image_id: str, module: str, seed: int) -> int:
    """A stable per-request seed (Python's `hash` is salted per process, so not that)."""
    digest = hashlib.sha1(f"{seed}\x1f{image_id}\x1f{module}".encode()).digest()
    return int.from_bytes(digest[:4], "big")
