"""The blueprint's summary: one Markdown page from the run folders of a `make pipeline`.

`make pipeline` runs every step into `<pipeline_dir>/<step>/`; this module reads what they wrote
(closed-ended `metrics.json`, the two-step and open-ended report runs, saliency's localisation
summary, the training summaries and the step times) and writes `summary.md`: per task, the
majority class, the part-1 model and the specialist, raw and calibrated, with 95% CIs; stage and
referral read from the specialist's reports; the image-reliance gaps; saliency pointing against a
uniform map. A step that has not run is reported as missing, never guessed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dataset.step_runner import read_stamp
from evaluation.scoring import CALIBRATED_SUFFIX, MAJORITY, biomarkers_above_majority

logger = logging.getLogger(__name__)

CLOSED_ENDED_STEPS = ("closed_ended_staging", "closed_ended_referral", "closed_ended_biomarkers")


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _cell(metric: Mapping[str, float] | None, ci: bool = True) -> str:
    if not metric:
        return "-"
    if ci and metric.get("ci_low") is not None:
        return f"{metric['value']:.3f} [{metric['ci_low']:.3f}, {metric['ci_high']:.3f}]"
    return f"{metric['value']:.3f}"


def _results(metrics: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["model"], r["task"]): r["metrics"] for r in metrics.get("results", [])}


def _accuracy_and_f1(results: Mapping[tuple[str, str], Any], model: str, task: str, ci: bool = True) -> str:
    found = results.get((model, task))
    return f"{_cell(found['accuracy'], ci)} / {_cell(found['macro_f1'], ci)}" if found else "-"


def closed_ended_rows(metrics: Mapping[str, Any], specialist: str, base: str) -> list[str]:
    """Markdown rows, one per task: accuracy and macro-F1 of each model, raw and calibrated."""
    results = _results(metrics)
    gaps = metrics.get("grounding") or {}
    rows = []
    for task in metrics.get("tasks", []):
        gap = " / ".join(f"{gaps[m][task]['gap']:.2f}" if task in gaps.get(m, {}) else "-" for m in (base, specialist))
        rows.append(f"| {task} | {_accuracy_and_f1(results, MAJORITY, task, ci=False)} | "
                    f"{_accuracy_and_f1(results, base, task, ci=False)} | {_accuracy_and_f1(results, specialist, task)} | "
                    f"{_accuracy_and_f1(results, specialist + CALIBRATED_SUFFIX, task)} | {gap} |")
    return rows


def biomarker_lines(metrics: Mapping[str, Any] | None, specialist: str, base: str) -> list[str]:
    """How many biomarkers each model's raw macro-F1 beats the majority class on (non-overlapping CIs)."""
    if not metrics:
        return []
    above = biomarkers_above_majority(metrics.get("results", []))
    total = sum(1 for t in metrics.get("tasks", []) if t.startswith("biomarker_"))
    parts = [f"{label} {len(above[m])} of {total}" + (f" ({', '.join(t.removeprefix('biomarker_') for t in above[m])})"
                                                     if above[m] else "")
             for label, m in (("specialist", specialist), ("part-1 model", base)) if m in above]
    lines = ["", "Biomarkers whose raw macro-F1 beats the majority class with non-overlapping CIs: " + "; ".join(parts) + "."]
    separation = metrics.get("finding_separation") or {}
    figures = [f"{label} {separation[m]['margin_correlation']:.2f}" for label, m in (("specialist", specialist),
               ("part-1 model", base)) if separation.get(m, {}).get("margin_correlation") is not None]
    labels = next((v["label_correlation"] for v in separation.values() if v.get("label_correlation") is not None), None)
    if figures and labels is not None:
        lines.append(f"Presence answers' present-minus-absent scores correlate between biomarkers (mean over pairs): "
                     f"{'; '.join(figures)}; the labels {labels:.2f} (near 1: one reading of the scan for every finding).")
    return lines


def report_rows(metrics: Mapping[str, Any] | None, model: str, source: str, tasks: tuple[str, ...]) -> list[str]:
    """Stage and referral read from a model's reports: accuracy [CI] and the unparseable share."""
    if not metrics:
        return [f"| {source}: {', '.join(tasks)} | not run | | |"]
    results = _results(metrics)
    majority = {t: results.get((MAJORITY, t)) for t in tasks}
    rows = []
    for task in tasks:
        found = results.get((model, task))
        if found:
            rows.append(f"| {source}: {task} | {_cell(found['accuracy'])} | {found['invalid_rate']['value']:.1%} | "
                        f"{_cell(majority[task]['accuracy']) if majority[task] else '-'} |")
    return rows


def report_quality_line(metrics: Mapping[str, Any] | None, model: str) -> list[str]:
    """The shares of a model's open-ended reports that contradict themselves or repeat a sentence."""
    found = {r["metric"]: r for r in (metrics or {}).get("report_accuracy", []) if r.get("model") == model}
    parts = [f"{label} {found[key]['value']:.1%} [{found[key]['ci_low']:.1%}, {found[key]['ci_high']:.1%}]"
             for key, label in (("contradictory_reports", "state and deny the same finding"),
                                ("repetitive_reports", "repeat a sentence")) if key in found]
    return ["", f"Open-ended reports that {'; that '.join(parts)}."] if parts else []


def saliency_rows(summary: Mapping[str, Any] | None) -> list[str]:
    """Per biomarker: phrases scored, pointing game against the uniform map, energy ratio."""
    if not summary:
        return ["| not run | | | |"]
    def interval(r: Mapping[str, Any], key: str) -> str:
        low, high = r.get(f"{key}_ci_low"), r.get(f"{key}_ci_high")
        return f"{r[key]:.3f}" + (f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else "")

    return [f"| {r['biomarker']} | {r['phrases']} | {interval(r, 'pointing_game')} vs {interval(r, 'pointing_uniform')} | "
            f"{r['energy_ratio_to_uniform']:.2f} |" for r in summary.get("per_biomarker", [])
            if r.get("pointing_game") is not None]


def training_rows(pipeline_dir: Path) -> list[str]:
    """The last image-reliance gap per curriculum module of each training stage."""
    rows = []
    for step in ("train_part_1", "train_part_2"):
        summary = _load(pipeline_dir / step / "training_summary.json")
        if not summary or not summary.get("grounding"):
            rows.append(f"| {step} | not run | |")
            continue
        last = summary["grounding"][-1]
        modules = ", ".join(f"{m} {v['gap']:.3f}" for m, v in last.items() if m not in ("step", "all"))
        rows.append(f"| {step} (step {last['step']}) | {last['all']['gap']:.3f} | {modules} |")
    return rows


def step_time_rows(pipeline_dir: Path) -> list[str]:
    """The steps' seconds from their stamps (`<step>.done`), in the order they finished, and the sum."""
    stamps = sorted(pipeline_dir.glob("*.done"), key=lambda stamp: stamp.stat().st_mtime_ns)
    if not stamps:
        return []
    seconds = [(stamp.stem, read_stamp(stamp)["seconds"]) for stamp in stamps]
    total = sum(value for _, value in seconds if value is not None)
    return ["", "## Step times (seconds, this machine)", "", "| step | seconds |", "|---|---|",
            *(f"| {name} | {'-' if value is None else value} |" for name, value in seconds),
            f"| all steps | {total} |"]


def write_pipeline_summary(pipeline_dir: str | Path, specialist: str = "specialist_v5_192px",
                           base: str = "retinavlm_base_192px") -> Path:
    """Write `<pipeline_dir>/summary.md` from the pipeline's run folders and return its path."""
    pipeline_dir = Path(pipeline_dir)
    lines = ["# Pipeline summary", "",
             "Test split. Raw = the option the model scores highest (summed log-likelihood); calibrated = the "
             "same scores with per-option biases fitted on the validation split. 95% CIs by patient bootstrap. "
             "Gap = image-reliance gap in nats (true answer's loss with another patient's scan minus with its own).",
             "", "## Closed-ended tasks (accuracy / macro-F1)", "",
             "| task | majority class | part-1 model, raw | specialist, raw | specialist, calibrated | gap part 1 / specialist |",
             "|---|---|---|---|---|---|"]
    for step in CLOSED_ENDED_STEPS:
        metrics = _load(pipeline_dir / step / "metrics.json")
        lines += closed_ended_rows(metrics, specialist, base) if metrics else [f"| {step} | not run | | | | |"]
    lines += biomarker_lines(_load(pipeline_dir / "closed_ended_biomarkers" / "metrics.json"), specialist, base)
    lines += ["", "## Stage and referral read from the specialist's reports", "",
              "| source | accuracy | unparseable | majority class |", "|---|---|---|---|"]
    for step, source, tasks in (("two_step_staging", "two-step protocol", ("staging",)),
                                ("two_step_referral", "two-step protocol", ("referral",)),
                                ("open_ended", "open-ended judge", ("staging", "referral"))):
        lines += report_rows(_load(pipeline_dir / step / "metrics.json"), specialist, source, tasks)
    lines += report_quality_line(_load(pipeline_dir / "open_ended" / "metrics.json"), specialist)
    lines += ["", "## Saliency on the phantom's own reports (pointing game vs a uniform map)", "",
              "| biomarker | phrases | pointing game vs uniform | energy share / uniform |", "|---|---|---|---|"]
    lines += saliency_rows(_load(pipeline_dir / "saliency" / "localisation_summary.json"))
    lines += ["", "## Image-reliance gap during training (validation, nats per answer token)", "",
              "| stage | all modules | per module |", "|---|---|---|"]
    lines += training_rows(pipeline_dir)
    lines += step_time_rows(pipeline_dir)
    out = pipeline_dir / "summary.md"
    out.write_text("\n".join(lines) + "\n")
    logger.info("wrote %s", out)
    return out
