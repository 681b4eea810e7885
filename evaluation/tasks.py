"""Closed-ended evaluation tasks, derived from `dataset.clinical` (never restated here).

A task names the annotation column that holds its label, its classes in order, the classes its
reference micro-F1 averages over, the question put to a model and the option texts scored in
likelihood mode. Staging and referral are multi-class; each of the ten biomarkers is its own
present/absent task scored on its own column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dataset.clinical import EVALUATION_BIOMARKERS, REFERRALS, STAGES, load_knowledge

ABSENT, PRESENT = "absent", "present"
BINARY_CLASSES = (ABSENT, PRESENT)
TASK_GROUPS = ("staging", "referral", "biomarkers")


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
        biomarker: the biomarker id for biomarker tasks, else None.
    """

    name: str
    kind: str
    label_column: str
    classes: tuple[str, ...]
    positive_classes: tuple[str, ...]
    question: str
    option_texts: dict[str, str]
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


def _staging_task(questions: dict[str, str]) -> Task:
    knowledge = load_knowledge()
    options = {s.id: f"{s.name[0].upper()}{s.name[1:]}." for s in knowledge.stages}
    return Task(name="staging", kind="staging", label_column="stage", classes=STAGES,
                positive_classes=STAGES, question=questions["staging"], option_texts=options)


def _referral_task(questions: dict[str, str]) -> Task:
    knowledge = load_knowledge()
    options = {r.id: f"{r.name[0].upper()}{r.name[1:]}." for r in knowledge.referral}
    return Task(name="referral", kind="referral", label_column="referral", classes=REFERRALS,
                positive_classes=REFERRALS, question=questions["referral"], option_texts=options)


def _biomarker_task(biomarker: str, questions: dict[str, str]) -> Task:
    name = load_knowledge().biomarkers[biomarker].name
    question = questions["biomarker"].format(biomarker=name)
    options = {PRESENT: f"Yes, {name} is present.", ABSENT: f"No, there is no {name}."}
    return Task(name=f"biomarker_{biomarker}", kind="biomarker", label_column=biomarker,
                classes=BINARY_CLASSES, positive_classes=(PRESENT,), question=question,
                option_texts=options, biomarker=biomarker)


def build_tasks(group: str, questions: dict[str, str], biomarkers: Sequence[str] | None = None) -> list[Task]:
    """The tasks of one task group.

    Args:
        group: `staging`, `referral` or `biomarkers`.
        questions: question templates with keys `staging`, `referral` and `biomarker` (the last
            with a `{biomarker}` placeholder), from the task config.
        biomarkers: biomarker ids for the `biomarkers` group; default all ten evaluation ones.

    Returns:
        The tasks, in a stable order.

    Raises:
        ValueError: unknown group or biomarker id.
    """
    if group == "staging":
        return [_staging_task(questions)]
    if group == "referral":
        return [_referral_task(questions)]
    if group == "biomarkers":
        wanted = list(biomarkers) if biomarkers else list(EVALUATION_BIOMARKERS)
        unknown = [b for b in wanted if b not in load_knowledge().biomarkers]
        if unknown:
            raise ValueError(f"unknown biomarker ids {unknown}; known: {', '.join(EVALUATION_BIOMARKERS)}")
        return [_biomarker_task(b, questions) for b in wanted]
    raise ValueError(f"unknown task group {group!r}; choose one of {', '.join(TASK_GROUPS)}")
