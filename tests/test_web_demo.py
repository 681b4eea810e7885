"""The web demo end to end: served by `run/demos/web_demo.py` in a subprocess, driven in headless
Chromium (Playwright pointed at Debian's /usr/bin/chromium) and through `gradio_client`, checked
against what the same model answers through `run/demos/inference.py`'s library function.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from PIL import Image

from support.configs import CONFIGS, ROOT
from support.training import train_demo_models, web_demo_overrides

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCAN = ROOT / "dataset" / "processed_images" / "phantom_00002_intermediate.png"
SPECIALIST = "specialist_v5_192px"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("web_demo")
    train_demo_models(root)
    return root


def _compose(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class App:
    """`run/demos/web_demo.py` in a subprocess on a free loopback port."""

    def __init__(self, root: Path, log: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = log
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
               "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, "run/demos/web_demo.py", "paths=template", *web_demo_overrides(root),
                   f"demo.port={self.port}"]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("w"),
                                        stderr=subprocess.STDOUT)
        deadline = time.time() + 600  # a loaded 2-core machine can take minutes to import gradio and torch
        while time.time() < deadline:
            assert self.process.poll() is None, log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(self.url, timeout=5) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(1)
        self.stop()  # leave no server behind
        raise AssertionError("the web demo did not start:\n" + log.read_text()[-3000:])

    def temp_dir(self) -> Path:
        line = next(x for x in self.log.read_text().splitlines() if "temporary files in" in x)
        return Path(line.split("temporary files in ")[1].split(",")[0])

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


def _expected_report(root: Path, question: str) -> str:
    """What `run/demos/inference.py` answers about SCAN (its library function, same model)."""
    from evaluation.demo import run_demo_inference

    cfg = _compose("inference", [*web_demo_overrides(root), f"run_dir={root / 'inference_run'}",
                                 f"dataset.task.images={SCAN}",
                                 f"dataset.task.questions=[{json.dumps(question)}]"])
    records = run_demo_inference(cfg)
    assert len(records) == 1 and records[0]["model"] == SPECIALIST
    return records[0]["answer"]


def _expected_stage(root: Path) -> str:
    """The most probable stage from the option likelihoods and the model card's biases, computed
    here without the demo's code."""
    from dataset.images import load_scan
    from dataset.transforms import build_scan_transform
    from evaluation.likelihood import score_options
    from evaluation.web_demo.engine import load_demo_tasks
    from models import load_vlm
    from models.model_card import calibration_biases

    folder = root / "outputs" / "models" / SPECIALIST
    task = load_demo_tasks(["closed_ended_specialist_staging"])[0]
    model, processor = load_vlm(folder, device="cpu")
    view = build_scan_transform(192, None, image_size=(208, 256))(load_scan(SCAN))
    classes = list(task.classes)
    scores = score_options(model, processor, [view], task.question, [task.option_texts[c] for c in classes],
                           end_of_turn=task.complete_answer)[0]
    biases = calibration_biases(folder)["staging"]  # the fixture's evaluation calibrated staging
    best = classes[int(np.argmax([s + biases[c] for s, c in zip(scores, classes)]))]
    from dataset.clinical import load_knowledge

    return next(o.name for o in load_knowledge().stages if o.id == best)


# True once the first <img> under the selector has loaded a picture wider than the given width.
_LOADED_WIDER_THAN = """([selector, width]) => {
    const img = document.querySelector(selector);
    return img !== null && img.complete && img.naturalWidth > width;
}"""


@pytest.mark.skipif(not Path(CHROMIUM).exists(),
                    reason="needs Debian's chromium (apt-get install -y chromium)")
def test_the_page_in_headless_chromium(trained, tmp_path):
    from playwright.sync_api import sync_playwright

    question = _compose("web_demo", web_demo_overrides(trained)).demo.report_question
    expected_report, expected_stage = _expected_report(trained, question), _expected_stage(trained)
    app = App(trained, tmp_path / "app.log")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, args=CHROMIUM_FLAGS,
                headless=True, viewport={"width": 1280, "height": 1000})
            page = browser.new_page()
            elsewhere = []  # the page must work offline: nothing but the app's own origin is fetched
            page.on("request", lambda r: None if r.url.startswith(("data:", "blob:", app.url.rstrip("/")))
                    else elsewhere.append(r.url))
            page.goto(app.url)
            page.wait_for_selector("#run", timeout=60_000)
            assert "Research use only" in page.inner_text("#disclaimer")
            page.set_input_files("#upload input[type=file]", str(SCAN))
            uploaded = f"() => document.querySelector('#upload').innerText.includes('{SCAN.name}')"
            page.wait_for_function(uploaded, timeout=120_000)
            page.click("#run")
            page.wait_for_function("() => document.querySelector('#report_a textarea').value.length > 0",
                                   timeout=120_000)
            page.wait_for_function("() => document.querySelector('#summary_a textarea').value.length > 0",
                                   timeout=120_000)
            page.wait_for_function("() => document.querySelector('#status').innerText.includes('Done')",
                                   timeout=180_000)
            report, summary = page.input_value("#report_a textarea"), page.input_value("#summary_a textarea")
            assert report == f"[{SCAN.name}]\n{expected_report}"
            assert f"staging: {expected_stage} (" in summary and "[calibrated]" in summary
            assert "drusen" in page.inner_text("#biomarkers")
            # Open one phrase's Grad-CAM overlay from the phrase list.
            page.wait_for_selector("#overlay img[src]", timeout=60_000)
            first_label = page.input_value("#phrase input")
            first_src = page.locator("#overlay img").get_attribute("src")
            page.click("#phrase input")
            option = page.locator("[role=option]").filter(has_text="drusen").first
            option.click()
            page.wait_for_function("() => document.querySelector('#phrase input').value.includes('drusen')",
                                   timeout=60_000)
            if page.input_value("#phrase input") != first_label:  # another phrase: another picture
                page.wait_for_function("src => document.querySelector('#overlay img')?.getAttribute('src') !== src",
                                       arg=first_src, timeout=60_000)
            # An <img> gets its src before the picture has loaded: wait until it has, then read its size.
            page.wait_for_function(_LOADED_WIDER_THAN, arg=["#overlay img", 100], timeout=60_000)
            page.wait_for_function(_LOADED_WIDER_THAN, arg=["#crops img", 0], timeout=60_000)
            crop_width = page.locator("#crops img").evaluate("img => img.naturalWidth")
            assert crop_width == 192, "the page shows the 192x192 crop the model sees"
            # The upload went into the app's temporary folder (removed below when the server stops).
            assert any(app.temp_dir().rglob(SCAN.name)), "the upload is not in the app's temporary folder"
            page.screenshot(path=str(tmp_path / "web_demo.png"), full_page=True)
            assert not elsewhere, f"the page fetched from other hosts: {elsewhere[:5]}"
            # README figure: WEB_DEMO_SCREENSHOT=docs/figures/web_demo.png
            if os.environ.get("WEB_DEMO_SCREENSHOT"):
                shutil.copy(tmp_path / "web_demo.png", os.environ["WEB_DEMO_SCREENSHOT"])
            browser.close()
        assert (tmp_path / "web_demo.png").stat().st_size > 20_000
        temp_dir = app.temp_dir()
        assert temp_dir.is_dir()
    finally:
        code = app.stop()
    assert code == 0, (tmp_path / "app.log").read_text()[-3000:]
    assert not temp_dir.exists(), "the uploads folder must be removed when the server stops"
    assert "Traceback" not in (tmp_path / "app.log").read_text()


def _write_bad_inputs(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {"text": folder / "report.txt", "small": folder / "small.png", "huge": folder / "huge.png"}
    files["text"].write_text("this is not a scan")
    Image.fromarray(np.full((120, 150), 90, np.uint8)).save(files["small"])
    Image.fromarray(np.zeros((7000, 7000), np.uint8)).save(files["huge"])  # 49 MP, a small file
    return files


def test_the_app_through_gradio_client(trained, tmp_path):
    from gradio_client import Client, handle_file

    question = _compose("web_demo", web_demo_overrides(trained)).demo.report_question
    expected_report = _expected_report(trained, question)
    # The fixture's closed-ended evaluation refreshed the trained specialist's card: metrics with CIs.
    card = (trained / "outputs" / "models" / SPECIALIST / "README.md").read_text()
    assert "pipeline_tag: image-text-to-text" in card and "| staging | accuracy |" in card
    assert "| staging | accuracy | 0." in card and "on validation" in card
    bad = _write_bad_inputs(tmp_path / "bad")
    app = App(trained, tmp_path / "app.log")
    try:
        client = Client(app.url, verbose=False, download_files=str(tmp_path / "downloads"))
        upload = [handle_file(str(SCAN))]
        out = client.predict(upload, [], SPECIALIST, "retinavlm_base_192px", api_name="/analyse")
        status, report, summary, report_b, download = out[0], out[2], out[3], out[8], out[10]
        assert status.startswith("Done"), status
        assert report == f"[{SCAN.name}]\n{expected_report}" and "staging: " in summary
        assert report_b.startswith(f"[{SCAN.name}]\n")
        results = json.loads(Path(download).read_text())
        assert "Research use only" in results["disclaimer"] and results["model"] == SPECIALIST
        scan = results["scans"][0]
        assert scan["report"] == expected_report and scan["crop_size"] == 192
        crop = Image.open(io.BytesIO(base64.b64decode(scan["crop_png_base64"])))
        assert crop.size == (192, 192) and crop.mode == "L"
        tasks = {o["task"]: o for o in scan["options"]}
        assert len([t for t in tasks if t.startswith("biomarker_")]) == 10 and tasks["staging"]["calibrated"]
        assert abs(sum(tasks["referral"]["probabilities"].values()) - 1) < 1e-6
        assert results["phrases"] and len(results["phrases"][0]["map"]) == 12  # the LeViT stem's 12x12 grid
        assert results["comparison"]["model"] == "retinavlm_base_192px"
        answer, download = client.predict("Are there drusen?", api_name="/ask")
        assert answer.startswith(f"[{SCAN.name}]\n") and len(answer) > len(SCAN.name) + 3
        assert json.loads(Path(download).read_text())["questions"][0]["question"] == "Are there drusen?"

        # Bad input: a message in the page, and the app keeps serving.
        cases = [([handle_file(str(bad["text"]))], SPECIALIST, "report.txt: not an image"),
                 ([handle_file(str(bad["small"]))], SPECIALIST, "smaller than the 192x192 crop"),
                 ([handle_file(str(bad["huge"]))], SPECIALIST, "megapixels"),
                 ([handle_file(str(SCAN))], "no_such_model", "unknown model 'no_such_model'"),
                 ([handle_file(str(SCAN))], "llava_med_local", "llava_med_local"),
                 ([], SPECIALIST, "upload one or more OCT scans")]
        for files, model, message in cases:
            status = client.predict(files, [], model, "", api_name="/analyse")[0]
            assert status.startswith("**Cannot run:**") and message in status, status
        # A mistyped comparison model is refused before the first model runs; one whose folder is
        # missing leaves the first model's results on the page and says why it did not run.
        status = client.predict(upload, [], SPECIALIST, "no_such_model", api_name="/analyse")[0]
        assert status.startswith("**Cannot run:**") and "unknown model 'no_such_model'" in status, status
        out = client.predict(upload, [], SPECIALIST, "llava_med_local", api_name="/analyse")
        assert out[0].startswith("Done") and "comparison did not run: llava_med_local" in out[0], out[0]
        assert out[2] == f"[{SCAN.name}]\n{expected_report}" and not out[8]
        # A free question needs a question.
        assert client.predict("   ", api_name="/ask")[0] == "Type a question about the scan first."

        # Four sessions at once are queued and all answered; samples work as input too.
        def session(_):
            start = time.perf_counter()
            result = Client(app.url, verbose=False, download_files=False).predict(
                [], ["phantom_00000_healthy.png"], SPECIALIST, "", api_name="/analyse")
            return result[0], time.perf_counter() - start

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(session, range(4)))
        assert all(status.startswith("Done") for status, _ in answers), answers
        assert client.predict(upload, [], SPECIALIST, "", api_name="/analyse")[0].startswith("Done")
    finally:
        assert app.stop() == 0
    assert "web demo run failed" not in (tmp_path / "app.log").read_text()  # no handler crashed
