"""The web demo: a Gradio page over a registry model (`run/demos/web_demo.py`).

- `run_web_demo(cfg)`: build and serve the page (what the script calls).
- `DemoEngine`: the computations behind it (reports, option probabilities, Grad-CAM), no web code.
- `read_upload(...)` / `DemoInputError`: input checks whose messages the page shows.
"""

from evaluation.web_demo.engine import DemoEngine
from evaluation.web_demo.inputs import DemoInputError, read_upload
from evaluation.web_demo.launch import run_web_demo

__all__ = ["DemoEngine", "DemoInputError", "read_upload", "run_web_demo"]
