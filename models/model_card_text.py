"""The Markdown body of a model card, rendered from its facts (see `models.model_card`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

METRIC_LABELS = {"accuracy": "accuracy", "macro_f1": "macro-F1", "reference_f1": "reference micro-F1",
                 "invalid_rate": "invalid answers"}
HEADLINE_METRICS = ("accuracy", "macro_f1", "reference_f1")


def _number(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{float(value):.{digits}f}"


def _data_section(data: Mapping[str, Any]) -> list[str]:
    facts = data.get("data") or {}
    if not facts:
        return ["## Training data", "", "Not recorded (the card was written without a training run).", ""]
    per_split = (facts.get("images_per_split") or {}).items()
    splits = ", ".join(f"{k} {v}" for k, v in per_split) or "no split column"
    if facts.get("kind") == "phantom":
        source = (f"the toolkit's **synthetic OCT phantom** (procedurally rendered B-scans with drawn "
                  f"biomarkers, generator seed {facts.get('phantom_seed')}); no patient data")
    else:
        source = "the user's **annotation table**"
    return ["## Training data", "",
            f"Trained on {source}: `{facts.get('annotations_file')}`, {facts.get('images')} images of "
            f"{facts.get('patients')} patients ({splits}). Curricula are built from the train split only; "
            "the test split is held out by patient.", ""]


def _stages_section(data: Mapping[str, Any]) -> list[str]:
    stages = data.get("stages") or []
    lines = ["## Training procedure", ""]
    if not stages:
        return lines + ["Not recorded.", ""]
    lines += ["| # | stage | started from | curricula (weight, examples) | steps | batch | LR | trainable |",
              "|---|---|---|---|---|---|---|---|"]
    for i, stage in enumerate(stages, start=1):
        curricula = "; ".join(f"`{name}` ({c['weight']:g}, {c['examples']})"
                              for name, c in (stage.get("curricula") or {}).items())
        lines.append(f"| {i} | `{stage.get('task')}` | `{stage.get('started_from')}` | {curricula} | "
                     f"{stage.get('steps')} | {stage.get('batch_size')} | {stage.get('learning_rate'):g} | "
                     f"{stage.get('policy')} |")
    pretraining = [s for s in stages if s.get("vision_pretraining_steps")]
    if pretraining:
        steps = pretraining[0]["vision_pretraining_steps"]
        lines += ["", f"The vision tower was first pretrained for {steps} steps on the training images, "
                      "then frozen."]
    return lines + [""]


def evaluation_lines(data: Mapping[str, Any]) -> list[str]:
    """The card's evaluation section: the latest closed-ended metrics of each task with their CIs."""
    evaluations = data.get("evaluations") or {}
    lines = ["## Evaluation", ""]
    if not evaluations:
        return lines + ["No closed-ended evaluation of these weights yet. Run "
                        "`python run/closed_ended_evaluation.py pretrained_models=<this model> "
                        "dataset=retina dataset/task=closed_ended_specialist_staging` (also `_referral`, "
                        "`_biomarkers`); "
                        "it refreshes this card.", ""]
    lines += ["Latest closed-ended evaluation of each task, on held-out patients. Intervals are 95% "
              "patient-clustered bootstrap percentile intervals; the majority-class column is the baseline "
              "that always answers the training split's most common class. Calibrated rows are the same "
              "answers re-decided with option biases fitted on a labelled validation split.", "",
              "| task | metric | value | 95% CI | majority class | images | mode | calibrated | evaluated |",
              "|---|---|---|---|---|---|---|---|---|"]
    for task, e in sorted(evaluations.items()):
        metrics = e.get("metrics") or {}
        majority = e.get("majority_class") or {}
        variants = [("no", metrics)]
        if e.get("calibrated_metrics"):  # the same answers re-decided with the fitted option biases
            variants.append((f"on {e.get('calibration_split')}", e["calibrated_metrics"]))
        for calibrated, values in variants:
            for name in HEADLINE_METRICS:
                if name not in values:
                    continue
                m = values[name]
                base = _number((majority.get(name) or {}).get("value"))
                lines.append(f"| {task} | {METRIC_LABELS[name]} | {_number(m.get('value'))} | "
                             f"[{_number(m.get('ci_low'))}, {_number(m.get('ci_high'))}] | {base} | "
                             f"{e.get('n_images')} ({e.get('split')}) | {e.get('answer_mode')} | "
                             f"{calibrated} | {str(e.get('evaluated', ''))[:10]} |")
    return lines + [""]


LIMITATIONS = [
    "## Limitations", "",
    "- A small model: it writes fluent text whose findings, stage and referral are often wrong; read its "
    "reports as hypotheses, never as a diagnosis.",
    "- Models trained on the synthetic phantom have never seen a real OCT scan; their metrics say nothing "
    "about real patients.",
    "- It sees one 2-D B-scan (a centre crop), not the OCT volume, the other eye, the history or other "
    "imaging a clinician uses; lesions outside the crop are invisible to it.",
    "- Metrics come from one held-out split of the training data source; scanners, populations and "
    "annotation protocols that differ will change them. Calibration biases are fitted on a validation "
    "split of the same source.",
    "- Grad-CAM maps show where the vision features that raise a phrase's probability lie, not a "
    "segmentation and not a proof of reasoning.", "",
]

EVALUATED_ONLY_LIMITATIONS = [
    "## Limitations", "",
    "- The metrics come from one held-out split of the evaluation's dataset (the synthetic phantom's say "
    "nothing about real patients); other scanners, populations and annotation protocols will change them.",
    "- The evaluation shows it one 2-D B-scan (a centre crop), not the OCT volume, the other eye, the "
    "history or other imaging a clinician uses.", "",
]


IMPORTED_LIMITATIONS = [
    "## Limitations", "",
    "- Trained by its authors on their own OCT data; metrics on this toolkit's synthetic phantom say nothing "
    "about real patients, and on other real data they depend on how close it is to the authors'.",
    "- It sees one 2-D B-scan, not the OCT volume, the other eye, the history or other imaging a clinician "
    "uses; read its reports as hypotheses, never as a diagnosis.",
    "- Grad-CAM maps show where the vision features that raise a phrase's probability lie, not a "
    "segmentation and not a proof of reasoning.", "",
]


def _imported_section(imported: Mapping[str, Any]) -> list[str]:
    """Where converted weights came from: the release, its terms, what the conversion did."""
    lines = ["## Where it came from", "",
             f"{imported.get('summary', '')} Converted on {imported.get('date')} by "
             f"`{imported.get('command')}`.", "", str(imported.get("terms", "")), "",
             "### What the conversion did", ""]
    lines += [f"- {item}" for item in imported.get("conversion") or []] + [""]
    if imported.get("differences"):
        lines += ["### Known differences from the original", ""]
        lines += [f"- {item}" for item in imported["differences"]] + [""]
    return lines


def _imported_loading_section(name: str) -> list[str]:
    return ["## How to load it", "",
            "Its vision tower (`retinavlm_resnet`) is registered with transformers' Auto classes by this "
            "project's `models` package (no remote code); stock `transformers` alone does not know it:", "",
            "```python",
            "import models  # registers the tower",
            "",
            f'model, processor = models.load_vlm("path/to/{name}")',
            "```", "",
            f"The SpecialistVLMs scripts load it by its registry name (`pretrained_models={name}`).", ""]


def _loading_section(name: str) -> list[str]:
    return ["## How to load it", "",
            "With stock `transformers` (no project code, no remote code):", "",
            "```python",
            "from PIL import Image",
            "from transformers import pipeline",
            "",
            f'vlm = pipeline("image-text-to-text", model="path/to/{name}")',
            'scan = Image.open("scan.png").convert("RGB")  # one OCT B-scan; the model sees a centre crop',
            'question = "What is the AMD stage of this scan?"',
            'messages = [{"role": "user", "content": [{"type": "image", "image": scan},',
            '                                         {"type": "text", "text": question}]}]',
            'print(vlm(text=messages, max_new_tokens=64)[0]["generated_text"][-1]["content"])',
            "```", "",
            "`AutoModelForImageTextToText.from_pretrained` and `AutoProcessor.from_pretrained` load it too, "
            "and `transformers serve` serves it. The SpecialistVLMs toolkit (`run/demos/web_demo.py`, "
            "`run/closed_ended_evaluation.py`, `run/visual_language_gradcam.py`) loads it by its registry "
            "name.",
            ""]


def marked_evaluation_section(data: Mapping[str, Any], disclaimer: str, markers: tuple[str, str]) -> str:
    """The evaluation section written into a card of a model this toolkit did not train, between
    `markers` so the next evaluation replaces it and leaves the rest of the card alone."""
    lines = [markers[0], "## Evaluation (SpecialistVLMs)", "", f"> {disclaimer}", "",
             "Written by SpecialistVLMs' closed-ended evaluation; the rest of this card is not.",
             *evaluation_lines(data)[1:], markers[1]]
    return "\n".join(lines)


def render_body(data: Mapping[str, Any], disclaimer: str, markers: tuple[str, str]) -> str:
    """The Markdown body: description, intended use, data, training, evaluation, limitations, loading.

    Args:
        data: the card facts (`name`, `architecture`, `data`, `stages`, `evaluations`, and `imported`
            for weights converted from someone else's release).
        disclaimer: the research-use disclaimer paragraph.
        markers: the comments around the evaluation section of a model evaluated, not trained, here.

    Returns:
        Markdown text ending in a newline.
    """
    name = str(data.get("name", "model"))
    imported = data.get("imported") or {}
    if not data.get("stages") and not imported:  # evaluated here, not trained here: say only what is known
        return "\n".join([f"# {name}", "", f"> {disclaimer}", "",
                          "A vision-language model evaluated, not trained, with the SpecialistVLMs toolkit; "
                          "its folder came without a model card, so its origin and training are not "
                          "described here.", "", marked_evaluation_section(data, disclaimer, markers), "",
                          *EVALUATED_ONLY_LIMITATIONS])
    arch = data.get("architecture") or {}
    params = arch.get("total_parameters")
    size = f", {params / 1e6:.1f}M parameters" if isinstance(params, (int, float)) and params else ""
    origin = ("trained with the SpecialistVLMs toolkit's curricula in the manner of RetinaVLM "
              "([Holland et al., 2024](https://arxiv.org/abs/2407.08410))")
    if imported:
        origin = (f"converted from the authors' release of {imported.get('model')} "
                  f"([{imported.get('citation')}]({imported.get('paper')}); see below)")
        origin += ", then trained further (stages below)" if data.get("stages") else ""
    lines = [f"# {name}", "", f"> {disclaimer}", "",
             "A LLaVA-style vision-language model for age-related macular degeneration (AMD) on retinal OCT "
             f"B-scans: a `{arch.get('vision_encoder', '?')}` vision encoder, a `{arch.get('adapter', '?')}` "
             f"adapter and a Llama-architecture `{arch.get('text_decoder', '?')}` language model{size}, saved "
             "as transformers' `LlavaForConditionalGeneration`. It answers questions about one scan and "
             f"writes reports (findings, AMD stage, referral), {origin}.", "",
             "## Intended use", "",
             "Research on specialist vision-language models: reproducing and extending curriculum training, "
             "benchmarking against baselines, and showing collaborators what such a model says about a scan "
             "and where it looks. Out of scope: any clinical use, screening, triage or decision support for "
             "real patients.", ""]
    if imported:
        lines += _imported_section(imported)
    if not imported or data.get("stages"):  # an import alone has no training run of its own
        lines += _data_section(data) + _stages_section(data)
    lines += evaluation_lines(data)
    if imported:
        return "\n".join(lines + IMPORTED_LIMITATIONS + _imported_loading_section(name))
    return "\n".join(lines + LIMITATIONS + _loading_section(name))
