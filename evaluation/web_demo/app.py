"""The Gradio page: upload scans or pick samples, run a registry model, read and download its answers.

Handlers never raise into Gradio: bad input and failures become a message in the status box (the
full traceback goes to the server log only), so the page stays usable. Model calls share one
concurrency group, so sessions queue for the CPU instead of running models over each other.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no usage reports, no version check

import gradio as gr  # noqa: E402
import pandas as pd  # noqa: E402

from evaluation.web_demo.engine import DemoEngine  # noqa: E402
from evaluation.web_demo.inputs import DemoInputError, read_upload, sample_files  # noqa: E402
from evaluation.web_demo.results import (  # noqa: E402
    OPTION_COLUMNS, biomarker_frame, crops_strip, option_rows, overlay_image, phrase_label, png_base64,
    reports_text, summary_text, write_results)
from models.model_card import DISCLAIMER  # noqa: E402
from saliency.overlays import OverlayStyle  # noqa: E402

logger = logging.getLogger(__name__)
MODEL_GROUP = "model"  # one queue for every event that runs a model


class WebDemo:
    """The page's handlers around a `DemoEngine`.

    Args:
        engine: the models.
        cfg: the `demo` config node (limits, samples folder, overlay style).
        downloads_dir: where JSON downloads are written (inside the app's temporary folder).
    """

    def __init__(self, engine: DemoEngine, cfg, samples_dir: str | Path, downloads_dir: Path):
        self.engine = engine
        self.cfg = cfg
        self.samples = {p.name: p for p in sample_files(samples_dir)}
        self.downloads_dir = downloads_dir
        self.style = OverlayStyle(**{k: v for k, v in dict(cfg.overlay).items()})

    # -- inputs ---------------------------------------------------------------------------------
    def read_inputs(self, files, samples) -> tuple[list[str], list]:
        """(names, model views) of the uploads, or else of the picked samples.

        Raises:
            DemoInputError: nothing given, too many scans, or an unusable file.
        """
        paths = [(Path(f), Path(f).name) for f in (files or [])]
        if not paths:
            unknown = [s for s in (samples or []) if s not in self.samples]
            if unknown:
                raise DemoInputError(f"unknown sample(s) {unknown}; pick from the list")
            paths = [(self.samples[s], s) for s in (samples or [])]
        if not paths:
            raise DemoInputError("upload one or more OCT scans, or pick a sample, then press Run")
        limit = int(self.cfg.max_images)
        if len(paths) > limit:
            raise DemoInputError(f"{len(paths)} scans given; this demo takes at most {limit} at once")
        max_bytes = int(float(self.cfg.max_upload_mb) * 1e6)
        max_pixels = int(float(self.cfg.max_megapixels) * 1e6)
        scans = [read_upload(path, self.engine.crop_size, max_bytes, max_pixels, name)
                 for path, name in paths]
        return unique_names([name for _, name in paths]), [self.engine.view(s) for s in scans]

    # -- handlers -------------------------------------------------------------------------------
    def analyse(self, files, samples, model_a, model_b, state):
        """Run the models; yields partial page updates as each output becomes ready."""
        out = self.outputs
        start = time.perf_counter()
        try:
            # Both names first: a typo in the second must not cost a whole run of the first.
            for name in dict.fromkeys(n for n in (model_a, model_b) if n):
                self.engine.check_name(name)
            names, views = self.read_inputs(files, samples)
            shown = {**self._cleared(), out["crops"]: crops_strip(views, names)}
            yield {**shown, out["status"]: f"Running {model_a} on {len(views)} scan(s)..."}
            # No lock across yields (Gradio may resume a generator on another thread): the shared
            # concurrency group already runs one model event at a time.
            steps = self._run_models(names, views, model_a, model_b, start)
            while True:
                try:
                    update = next(steps)
                except StopIteration as finished:
                    payload, overlays = finished.value
                    break
                shown.update(update)
                yield update
            path = write_results(self.downloads_dir, payload)
            new_state = {"model_a": model_a, "names": names, "views": views, "payload": payload,
                         "overlays": overlays}
            timing = payload["timings"]
            skipped = f" The comparison did not run: {payload['comparison_error']}" \
                if payload.get("comparison_error") else ""
            # Everything once more: API clients (gradio_client) see only the last update.
            done = (f"Done: report after {timing['report_s']:.1f} s, all outputs after "
                    f"{timing['all_s']:.1f} s.{skipped}")
            yield {**shown, out["status"]: done, out["download"]: str(path), out["state"]: new_state}
        except DemoInputError as err:
            yield {out["status"]: f"**Cannot run:** {err}", **self._cleared(), out["state"]: None}
        except Exception as err:  # noqa: BLE001 - the page must stay alive; the log keeps the traceback
            logger.exception("web demo run failed")
            first_line = str(err).splitlines()[0] if str(err) else ""
            yield {out["status"]: f"**Something went wrong:** {type(err).__name__}: {first_line} (the server "
                                  "log has the details)", **self._cleared(), out["state"]: None}

    def _run_models(self, names, views, model_a, model_b, start):
        out, engine = self.outputs, self.engine
        first = engine.open(model_a)
        reports = engine.reports(first, views)
        report_s = time.perf_counter() - start
        yield {out["report_a"]: reports_text(names, reports)}
        stage = engine.options(first, views, engine.stage_tasks())
        yield {out["summary_a"]: summary_text(engine, names, stage),
               out["options"]: pd.DataFrame(option_rows(engine, model_a, names, stage),
                                            columns=OPTION_COLUMNS)}
        markers = engine.options(first, views, engine.biomarker_tasks())
        marker_rows = [(model_a, n, m) for n, m in zip(names, markers)]
        yield {out["biomarkers"]: biomarker_frame(engine, marker_rows)}
        overlays, phrases = {}, []
        for name, view, report in zip(names, views, reports):
            for phrase in engine.explain(first, view, report, name):
                label = phrase_label(name, phrase)
                overlays[label] = overlay_image(view, phrase["map"], label.split(" | ", 1)[1], self.style)
                phrases.append({"scan": name, **phrase})
        labels = list(overlays)
        # The state goes with the phrase list: picking a phrase looks its overlay up there.
        yield {out["phrase"]: gr.update(choices=labels, value=labels[0] if labels else None),
               out["overlay"]: overlays[labels[0]] if labels else None,
               out["state"]: {"model_a": model_a, "names": names, "views": views, "overlays": overlays}}
        payload = {"model": model_a, "calibration_biases": first.biases,
                   "report_question": engine.report_question,
                   "scans": [{"name": n, "crop_size": engine.crop_size, "crop_png_base64": png_base64(v),
                              "report": r, "options": [o.to_dict() for o in s + m]}
                             for n, v, r, s, m in zip(names, views, reports, stage, markers)],
                   "phrases": phrases, "comparison": None, "questions": []}
        if not labels:
            yield {out["status"]: "No finding phrase in the report to explain; running the comparison..."}
        second = None
        if model_b and model_b != model_a:
            try:
                second = engine.open(model_b)
            except DemoInputError as err:  # e.g. its folder is missing: keep the first model's results
                payload["comparison_error"] = str(err)
        if second is not None:
            reports_b = engine.reports(second, views)
            stage_b = engine.options(second, views, engine.stage_tasks())
            markers_b = engine.options(second, views, engine.biomarker_tasks())
            rows = option_rows(engine, model_a, names, stage) + option_rows(engine, model_b, names, stage_b)
            marker_rows += [(model_b, n, m) for n, m in zip(names, markers_b)]
            yield {out["report_b"]: reports_text(names, reports_b),
                   out["summary_b"]: summary_text(engine, names, stage_b),
                   out["options"]: pd.DataFrame(rows, columns=OPTION_COLUMNS),
                   out["biomarkers"]: biomarker_frame(engine, marker_rows)}
            scans_b = [{"name": n, "report": r, "options": [o.to_dict() for o in s + m]}
                       for n, r, s, m in zip(names, reports_b, stage_b, markers_b)]
            payload["comparison"] = {"model": model_b, "calibration_biases": second.biases, "scans": scans_b}
        payload["timings"] = {"report_s": round(report_s, 2), "all_s": round(time.perf_counter() - start, 2)}
        return payload, overlays

    def show_overlay(self, label, state):
        """The overlay of the picked phrase."""
        if not state or label not in (state.get("overlays") or {}):
            return gr.skip()  # e.g. the list was just cleared; keep what is shown
        return state["overlays"][label]

    def ask(self, question, state):
        """Answer a free question about the scans of the last run."""
        out = self.outputs
        question = (question or "").strip()
        if not state or not state.get("payload"):
            return {out["answer"]: "Run the model on a scan first (and let it finish), then ask about it."}
        if not question:
            return {out["answer"]: "Type a question about the scan first."}
        if len(question) > int(self.cfg.max_question_chars):
            limit = self.cfg.max_question_chars
            return {out["answer"]: f"The question is longer than {limit} characters; shorten it."}
        try:
            answers = self.engine.ask(self.engine.open(state["model_a"]), state["views"], question)
        except DemoInputError as err:
            return {out["answer"]: f"Cannot answer: {err}"}
        except Exception as err:  # noqa: BLE001 - keep the page alive
            logger.exception("web demo question failed")
            return {out["answer"]: f"Something went wrong: {type(err).__name__} (the server log has the "
                                   "details)"}
        names = state["names"]
        state["payload"]["questions"].append({"question": question, "answers": dict(zip(names, answers))})
        path = write_results(self.downloads_dir, state["payload"])
        return {out["answer"]: reports_text(names, answers), out["download"]: str(path), out["state"]: state}

    def _cleared(self) -> dict:
        out = self.outputs
        cleared = {out[k]: None for k in ("report_a", "summary_a", "options", "biomarkers", "overlay",
                                          "report_b", "summary_b", "download", "answer")}
        return cleared | {out["phrase"]: gr.update(choices=[], value=None)}

    # -- layout ---------------------------------------------------------------------------------
    def build(self, default_a: str, default_b: str | None) -> gr.Blocks:
        """The page."""
        names = self.engine.model_names
        with gr.Blocks(title="SpecialistVLMs: OCT demo", delete_cache=(3600, 3600)) as page:
            gr.Markdown("# SpecialistVLMs: what the specialist sees in an OCT scan")
            gr.Markdown(f"> {DISCLAIMER} Do not upload identifiable patient data.", elem_id="disclaimer")
            with gr.Row():
                files = gr.File(label="OCT B-scans (PNG, JPEG, TIFF; 8/16-bit; gray or RGB)",
                                file_count="multiple", elem_id="upload")
                with gr.Column():
                    samples = gr.Dropdown(list(self.samples), multiselect=True, label="...or pick samples",
                                          elem_id="samples")
                    # Custom values pass to the engine, which answers an unknown name with a message.
                    model_a = gr.Dropdown(names, value=default_a, label="Model", allow_custom_value=True,
                                          elem_id="model_a")
                    model_b = gr.Dropdown([""] + names, value=default_b or "",
                                          label="Compare with (optional)", allow_custom_value=True,
                                          elem_id="model_b")
                    run = gr.Button("Run the model", variant="primary", elem_id="run")
            status = gr.Markdown("Upload a scan or pick a sample, then press Run.", elem_id="status")
            side = self.engine.crop_size
            crops = gr.Image(label=f"What the model sees ({side}x{side} centre crop of each scan)",
                             interactive=False, elem_id="crops")
            with gr.Row():
                with gr.Column():
                    report_a = gr.Textbox(label="Report", lines=8, interactive=False, elem_id="report_a")
                    summary_a = gr.Textbox(label="Stage and referral (most probable option)", lines=2,
                                           interactive=False, elem_id="summary_a")
                with gr.Column():
                    report_b = gr.Textbox(label="Report of the second model", lines=8, interactive=False,
                                          elem_id="report_b")
                    summary_b = gr.Textbox(label="Its stage and referral", lines=2, interactive=False,
                                           elem_id="summary_b")
            options = gr.Dataframe(label="Stage and referral: probability of each option", interactive=False,
                                   elem_id="options")
            biomarkers = gr.Dataframe(label="Biomarkers: probability present", interactive=False,
                                      elem_id="biomarkers")
            with gr.Row():
                phrase = gr.Dropdown([], elem_id="phrase",
                                     label="Finding phrase of the report: pick one to see its Grad-CAM map")
                overlay = gr.Image(label="Grad-CAM overlay", interactive=False, height=320, elem_id="overlay")
            with gr.Row():
                question = gr.Textbox(label="Ask the model about the scan", elem_id="question")
                answer = gr.Textbox(label="Answer", lines=3, interactive=False, elem_id="answer")
            ask = gr.Button("Ask", elem_id="ask")
            download = gr.File(label="Everything above as JSON", interactive=False, elem_id="download")
            gr.Markdown("Probabilities are a softmax over each option's log-likelihood (scored as the "
                        "closed-ended evaluation scores it), plus the option biases of the model's latest "
                        "closed-ended evaluation when its model card records one ([calibrated]). They rank "
                        "options; they are not clinical risks.")
            state = gr.State(None)
            self.outputs = {"status": status, "crops": crops, "report_a": report_a, "summary_a": summary_a,
                            "options": options, "biomarkers": biomarkers, "phrase": phrase,
                            "overlay": overlay, "report_b": report_b, "summary_b": summary_b,
                            "download": download, "answer": answer, "state": state}
            outputs = list(self.outputs.values())
            run.click(self.analyse, [files, samples, model_a, model_b, state], outputs, api_name="analyse",
                      concurrency_id=MODEL_GROUP, concurrency_limit=1)
            ask.click(self.ask, [question, state], [answer, download, state], api_name="ask",
                      concurrency_id=MODEL_GROUP, concurrency_limit=1)
            phrase.change(self.show_overlay, [phrase, state], overlay, api_name="show_overlay",
                          concurrency_limit=None)
        return page


def unique_names(names: list[str]) -> list[str]:
    """File names made unique (`scan.png`, `scan.png (2)`): phrases and rows are labelled by them."""
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return unique


def build_page(engine: DemoEngine, demo_cfg, samples_dir: str | Path, downloads_dir: Path,
               default_a: str, default_b: str | None) -> gr.Blocks:
    """Build the Gradio page over an engine (not launched).

    Args:
        engine: the models.
        demo_cfg: the `demo` config node.
        samples_dir: folder of sample scans offered in the page.
        downloads_dir: where JSON downloads go.
        default_a: the model selected at start.
        default_b: the comparison model selected at start (None: none).

    Returns:
        The Blocks page.
    """
    return WebDemo(engine, demo_cfg, samples_dir, downloads_dir).build(default_a, default_b)

