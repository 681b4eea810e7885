"""Starting the web demo: what `run/demos/web_demo.py` calls.

The app binds to loopback unless told otherwise, makes no public share link unless asked, sends no
analytics, and keeps every upload and download in one temporary folder that is removed when the
server stops (normally, on Ctrl-C or on SIGTERM).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from dataset.runtime import prepare_run

logger = logging.getLogger(__name__)


def auth_pair(auth_cfg: Any) -> tuple[str, str] | None:
    """`demo.auth` as Gradio's (user, password), or None when unset.

    Raises:
        ValueError: only one of user and password given.
    """
    if not auth_cfg:
        return None
    user, password = auth_cfg.get("user"), auth_cfg.get("password")
    if not user and not password:
        return None
    if not user or not password:
        raise ValueError("demo.auth needs both user and password (e.g. demo.auth.user=ana "
                         "demo.auth.password=...), or neither")
    return str(user), str(password)


def _theme():
    import gradio as gr

    # System fonts: the default theme fetches Google fonts, which an offline browser waits for.
    system = ["ui-sans-serif", "system-ui", "sans-serif"]
    return gr.themes.Default(font=system, font_mono=["ui-monospace", "monospace"])


def run_web_demo(cfg: DictConfig, block: bool = True) -> dict[str, Any]:
    """Build the engine and the page and serve it.

    Args:
        cfg: the composed `web_demo` config.
        block: serve until interrupted (the script); False returns at once with the running app
            (tests), and the caller must call `result["close"]()`.

    Returns:
        `url`, `temp_dir`, `page`, `close` (stops the server and removes the temporary folder).

    Raises:
        ValueError: bad `demo.auth`, or the selected model is not a local registry entry.
    """
    demo = cfg.demo
    auth = auth_pair(demo.auth)
    run_dir = prepare_run(cfg)
    # SIGTERM cleans up like Ctrl-C, from here on (also while the models and page load).
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)) if block else None
    temp_dir = Path(tempfile.mkdtemp(prefix="specialist_vlms_web_demo_"))
    # Gradio stores uploads and generated files under GRADIO_TEMP_DIR; point it at our folder.
    os.environ["GRADIO_TEMP_DIR"] = str(temp_dir / "gradio")
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    page = None

    def close() -> None:
        try:
            if page is not None:
                page.close()
        except Exception:  # noqa: BLE001 - closing twice or before start is harmless
            pass
        shutil.rmtree(temp_dir, ignore_errors=True)
        logger.info("removed the temporary folder %s", temp_dir)

    try:
        from evaluation.web_demo.app import build_page  # imports gradio: slow, so inside the cleanup
        from evaluation.web_demo.engine import DemoEngine

        engine = DemoEngine(cfg)
        default_a = str(cfg.pretrained_models.name)
        if default_a not in engine.model_names:
            raise ValueError(f"pretrained_models={default_a} is not a local registry model; the demo needs "
                             f"one of: {', '.join(engine.model_names)}")
        default_b = demo.compare_with
        page = build_page(engine, demo, cfg.paths.processed_images_dir, temp_dir / "downloads", default_a,
                          default_b if default_b in engine.model_names else None)
        page.queue(max_size=int(demo.queue_size), default_concurrency_limit=1)
        _, url, _ = page.launch(server_name=str(demo.host), server_port=int(demo.port) if demo.port else None,
                                auth=auth, share=bool(demo.share), prevent_thread_lock=True, quiet=True,
                                show_error=False, ssr_mode=False, mcp_server=False,
                                max_file_size=f"{int(float(demo.max_upload_mb))}mb",
                                allowed_paths=[str(temp_dir)], theme=_theme(),
                                state_session_capacity=int(demo.max_sessions))
    except BaseException:
        shutil.rmtree(temp_dir, ignore_errors=True)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        raise
    logger.info("web demo at %s (temporary files in %s, run folder %s); Ctrl-C stops it",
                url, temp_dir, run_dir)
    result = {"url": url, "temp_dir": temp_dir, "page": page, "close": close}
    if not block:
        return result
    try:
        page.block_thread()
    finally:
        signal.signal(signal.SIGTERM, previous)
        close()
    return result
