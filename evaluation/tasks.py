"""Closed-ended evaluation tasks, derived from `dataset.clinical` (never restated here).

A task names the annotation column that holds its label, its classes in order, the classes its
reference micro-F1 averages over, the question put to a model and the option texts scored in
likelihood mode. Staging and referral are multi-class; each of the ten biomarkers is its own
present/absent task scored on its own column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dataset.clinical import EVALUATION_BIOMARKERS, load_knowledge

ABSENT, PRESENT = "absent", "present"
BINARY_CLASSES = (ABSENT, PRESENT)
TASK_GROUPS = ("staging", "referral", "biomarkers")
DEFAULT_BIOMARKER_OPTIONS = {PRESENT: "Yes, there is {biomarker}.", ABSENT: "No, there is no {biomarker}."}


@dataclass(frozen=True)
class Task:
    """One closed-ended task.

    Attributes:
        name: task id, e.g. `staging`, `referral` or `biomarker_srf`.
        kind: `staging`, `referral` or `biomarker`.
        label_column: annotation column holding the label.
        classes: class ids in order (severity order for staging and referral).
        positive_classes: classes the reference micro-F1 averages over (all classes for the
            multi-class tasks; `present` for a biomarker).
        question: the question asked in `direct` and `two_step` modes.
        option_texts: class id -> the answer text scored in `likelihood` mode.
        complete_answer: whether an option is a whole answer (its end-of-turn token is scored
            too) or only the start of one.
        biomarker: the biomarker id for biomarker tasks, else None.
    """

    name: str
    kind: str
    label_column: str
    classes: tuple[str, ...]
    positive_classes: tuple[str, ...]
    question: str
    option_texts: dict[str, str]
    complete_answer: bool = True
    biomarker: str | None = None

    def label_of(self, row) -> str:
        """The class id of an annotation row (a pandas row or mapping).

        Raises:
            ValueError: the row's label is not one of the task's classes.
        """
        value = row[self.label_column]
        if self.kind == "biomarker":
            from dataset.clinical import is_present

            return PRESENT if is_present({self.label_column: value}, self.label_column) else ABSENT
        label = str(value)
        if label not in self.classes:
            raise ValueError(f"task {self.name}: label {label!r} in column {self.label_column!r} is "
                             f"not one of {', '.join(self.classes)}; fix the annotation table")
        return label


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _multiclass_task(kind: str, label_column: str, outcomes, spec: Mapping[str, Any]) -> Task:
    template = str(spec.get("option_template") or "{Name}.")
    options = {o.id: template.format(name=o.name, Name=_upper_first(o.name)) for o in outcomes}
    ids = tuple(o.id for o in outcomes)
    overrides = dict(spec.get("options") or {})
    unknown = set(overrides) - set(ids)
    if unknown:
        raise ValueError(f"task {kind}: options given for unknown classes {sorted(unknown)}; "
                         f"known: {', '.join(ids)}")
    options.update({k: str(v) for k, v in overrides.items()})
    return Task(name=kind, kind=kind, label_column=label_column, classes=ids, positive_classes=ids,
                question=str(spec["question"]), option_texts=options,
                complete_answer=bool(spec.get("complete_answer", True)))


def _biomarker_task(biomarker: str, spec: Mapping[str, Any]) -> Task:
    name = load_knowledge().biomarkers[biomarker].name
    templates = dict(spec.get("option_templates") or DEFAULT_BIOMARKER_OPTIONS)
    options = {c: str(templates[c]).format(biomarker=name, Biomarker=_upper_first(name))
               for c in BINARY_CLASSES}
    return Task(name=f"biomarker_{biomarker}", kind="biomarker", label_column=biomarker,
                classes=BINARY_CLASSES, positive_classes=(PRESENT,),
                question=str(spec["question"]).format(biomarker=name), option_texts=options,
                complete_answer=bool(spec.get("complete_answer", True)), biomarker=biomarker)


def build_tasks(group: str, spec: Mapping[str, Any], biomarkers: Sequence[str] | None = None) -> list[Task]:
    """The tasks of one task group.

    Args:
        group: `staging`, `referral` or `biomarkers`.
        spec: the task config: `question` (with `{biomarker}` for biomarkers), optional
            `option_template` (`{name}`/`{Name}`: the class display name) or, for biomarkers,
            `option_templates` (`present`/`absent`, with `{biomarker}`), optional `options`
            (class id -> option text, overriding the template for that class), and `complete_answer`
            (score the end-of-turn token too, i.e. the option is the whole answer).
        biomarkers: biomarker ids for the `biomarkers` group; default all ten evaluation ones.

    Returns:
        The tasks, in a stable order.

    Raises:
        ValueError: unknown group or biomarker id.
    """
    knowledge = load_knowledge()
    if group == "staging":
        return [_multiclass_task("staging", "stage", knowledge.stages, spec)]
    if group == "referral":
        return [_multiclass_task("referral", "referral", knowledge.referral, spec)]
    if group == "biomarkers":
        wanted = list(biomarkers) if biomarkers else list(EVALUATION_BIOMARKERS)
        unknown = [b for b in wanted if b not in knowledge.biomarkers]
        if unknown:
            raise ValueError(f"unknown biomarker ids {unknown}; known: {', '.join(EVALUATION_BIOMARKERS)}")
        return [_biomarker_task(b, spec) for b in wanted]
    raise ValueError(f"unknown task group {group!r}; choose one of {', '.join(TASK_GROUPS)}")
