"""The README's web-demo figure, from the models `make pipeline` trained (outputs/models).

    python docs/figures/web_demo_screenshot.py [--scan dataset/processed_images/<scan>.png]
        [--phrase drusen] [--out docs/figures/web_demo.png]

Serves `run/demos/web_demo.py` on a free loopback port, opens it in headless Chromium (Debian's
/usr/bin/chromium through Playwright), uploads the scan, runs the specialist beside the part-1
model, opens the Grad-CAM map of the first report phrase that names `--phrase`, and saves the
whole page. Needs Debian's chromium (`apt-get install -y chromium`); gradio and playwright come
with requirements.txt.
"""

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sample = ROOT / "dataset" / "processed_images" / "phantom_00006_late_wet_active.png"
    parser.add_argument("--scan", default=str(sample), help="the scan to upload (default: a shipped sample)")
    parser.add_argument("--phrase", default="fluid", help="open the map of the first phrase containing this")
    parser.add_argument("--out", default=str(ROOT / "docs" / "figures" / "web_demo.png"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    server = subprocess.Popen([sys.executable, "run/demos/web_demo.py", f"demo.port={port}"], cwd=ROOT, env=env)
    try:
        _wait_for(url, server)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(url)
            page.set_input_files("#upload input[type=file]", args.scan)
            stem = Path(args.scan).name[:12]  # the page shortens long file names
            page.wait_for_function(f"() => document.querySelector('#upload').innerText.includes('{stem}')",
                                   timeout=120_000)
            page.click("#run")
            page.wait_for_function("() => document.querySelector('#status').innerText.includes('Done')",
                                   timeout=300_000)
            page.wait_for_selector("#overlay img[src]", timeout=120_000)
            first = page.locator("#overlay img").get_attribute("src")
            page.click("#phrase input")
            options = page.locator("[role=option]").filter(has_text=args.phrase)
            if options.count():
                options.first.click()
                page.wait_for_function("src => document.querySelector('#overlay img')?.getAttribute('src') !== src",
                                       arg=first, timeout=120_000)
            else:
                page.keyboard.press("Escape")
                print(f"no report phrase contains {args.phrase!r}: the first phrase's map is shown")
            page.wait_for_function("() => { const i = document.querySelector('#overlay img');"
                                   " return i && i.complete && i.naturalWidth > 100; }", timeout=120_000)
            page.screenshot(path=args.out, full_page=True)
            browser.close()
        print(f"wrote {args.out}")
    finally:
        server.terminate()
        server.wait(timeout=60)


def _wait_for(url: str, server: subprocess.Popen, seconds: int = 600) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if server.poll() is not None:
            sys.exit(f"the web demo exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(1)
    sys.exit(f"the web demo did not answer at {url} within {seconds} s")


if __name__ == "__main__":
    main()
