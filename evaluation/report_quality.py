"""Whether a report reads as one specialist's statement: no finding both stated and denied, no
sentence written twice.

A small model can write "A few small drusen in the foveal region. ... No drusen are seen.": each
sentence is fluent, the report is not. The judge then reads one of the two and the report may still
score; a clinician would not trust it. These checks count such reports, so that a recipe which
writes more of them shows it (open-ended evaluation, `report_accuracy.csv`; the pipeline summary).

- `contradicted_findings(text)`: the biomarkers a report both asserts and denies, by the answer
  parser's own reading of each mention (`evaluation.parser.find_mentions`). Fluid stated absent in
  general ("No fluid is seen") denies subretinal and intraretinal fluid.
- `repeated_sentences(text)`: how many sentences repeat an earlier one of the same report (case and
  spacing ignored).
- `report_quality(records, ...)`: per model, the share of contradictory and of repetitive reports,
  with patient-bootstrap CIs.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd

from dataset.clinical import EVALUATION_BIOMARKERS
from evaluation.lexicon import Lexicon, load_lexicon
from evaluation.parser import expand_shared_heads, find_mentions
from evaluation.statistics import patient_bootstrap

FLUID = ("srf", "irf")
SENTENCE = re.compile(r"[^.!?\n]+")
CONTRADICTORY, REPETITIVE = "contradictory_reports", "repetitive_reports"


def contradicted_findings(text: str, lexicon: Lexicon | None = None) -> list[str]:
    """Evaluation biomarkers that `text` both asserts and denies, in `EVALUATION_BIOMARKERS` order.

    Example:
        >>> contradicted_findings("A few small drusen centrally. No fluid. No drusen are seen.")
        ['drusen']
    """
    lex = lexicon or load_lexicon()
    text = expand_shared_heads(text or "", lex)
    fluid_denied = bool(lex.fluid_absent.search(text))
    found = []
    for biomarker in EVALUATION_BIOMARKERS:
        mentions = find_mentions(text, biomarker, lex)
        asserted = any(not m.negated for m in mentions)
        denied = any(m.negated for m in mentions) or (biomarker in FLUID and fluid_denied)
        if asserted and denied:
            found.append(biomarker)
    return found


def repeated_sentences(text: str) -> int:
    """Sentences of `text` that repeat an earlier one (case and spacing ignored)."""
    seen, repeats = set(), 0
    for match in SENTENCE.finditer(text or ""):
        sentence = " ".join(match.group().lower().split())
        if not sentence:
            continue
        repeats += sentence in seen
        seen.add(sentence)
    return repeats


def report_quality(records: pd.DataFrame, n_resamples: int, seed: int,
                   lexicon: Lexicon | None = None) -> pd.DataFrame:
    """Per model, the share of reports that contradict themselves and that repeat a sentence.

    Args:
        records: one row per report with `model`, `patient_id` and `report`.
        n_resamples, seed: patient bootstrap of the shares.

    Returns:
        Rows `model, metric, value, ci_low, ci_high, n_images` (metrics `contradictory_reports`,
        `repetitive_reports`), the layout of `report_accuracy.csv`.
    """
    lex = lexicon or load_lexicon()
    checks: dict[str, Callable[[str], bool]] = {
        CONTRADICTORY: lambda text: bool(contradicted_findings(text, lex)),
        REPETITIVE: lambda text: repeated_sentences(text) > 0,
    }
    rows = []
    for model, group in records.groupby("model", sort=False):
        patients = group["patient_id"].astype(str).tolist()
        for metric, check in checks.items():
            flags = np.array([check(str(text)) for text in group["report"]], dtype=float)
            interval = patient_bootstrap(lambda idx, v=flags: float(v[idx].mean()), patients,
                                         n_resamples=n_resamples, seed=seed)
            rows.append({"model": model, "metric": metric, "value": float(flags.mean()),
                         "ci_low": interval.low, "ci_high": interval.high, "n_images": len(flags)})
    return pd.DataFrame(rows)

