"""Throughput of curriculum generation against a server that answers after a fixed delay.

Measures requests per second at concurrency 1 (the baseline) and 16, through the OpenAI backend
alone and through the whole module loop (prompting, parsing, validation, fsynced store), and
prints their ratios. Target: at least 10x at concurrency 16.

    python benchmarks/curriculum_concurrency.py [--delay 0.5] [--requests 128]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd

from curriculum.backends import ChatRequest
from curriculum.backends.openai_backend import OpenAIBackend
from curriculum.generator import generate_module
from curriculum.modules import ModuleSpec
from dataset.clinical import BIOMARKERS

ANSWER = json.dumps({"qa": [{"question": "Can you see the retinal layers?", "answer": "Yes."},
                            {"question": "Is the image in focus?", "answer": "Mostly."}]})


def start_server(delay_s: float) -> ThreadingHTTPServer:
    """A local chat-completions endpoint that sleeps `delay_s` before each answer."""
    body = json.dumps({"id": "b", "object": "chat.completion", "created": 0, "model": "bench",
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": ANSWER}}],
                       "usage": {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70}}).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("content-length", 0)))
            time.sleep(delay_s)
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128  # the default backlog of 5 drops connections under a burst

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def backend_throughput(base_url: str, concurrency: int, requests: int) -> float:
    backend = OpenAIBackend("bench", base_url=base_url, max_concurrency=concurrency, max_retries=0)
    batch = [ChatRequest([{"role": "user", "content": f"image {i}"}]) for i in range(requests)]
    started = time.perf_counter()
    responses = backend.complete(batch)
    elapsed = time.perf_counter() - started
    failed = [r.error for r in responses if not r.ok]
    assert not failed, failed[:3]
    return requests / elapsed


def pipeline_throughput(base_url: str, concurrency: int, requests: int) -> float:
    rows = [{"image_id": f"img{i}", "eye": "left", "stage": "healthy", "referral": "not_seen",
             "referral_treatment": "no_referral", "report": "Normal layers.", **{b: False for b in BIOMARKERS}}
            for i in range(requests)]
    module = ModuleSpec(name="bench", kind="description", source="report", prompt_version="v1", num_questions=2,
                        system_prompt="", user_prompt="{report} {output_format}",
                        output_format={"json": "JSON", "text": "text"})
    backend = OpenAIBackend("bench", base_url=base_url, max_concurrency=concurrency, max_retries=0)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        result = generate_module(module, pd.DataFrame(rows), backend, folder, batch_size=64)
        elapsed = time.perf_counter() - started
    assert result.counts["pairs_kept"] == 2 * requests
    return requests / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--delay", type=float, default=0.5, help="server delay per request, seconds")
    parser.add_argument("--requests", type=int, default=128, help="requests per measurement at concurrency 16")
    args = parser.parse_args()
    server = start_server(args.delay)
    base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    baseline_requests = max(8, args.requests // 8)  # concurrency 1 is slow; fewer requests suffice
    try:
        for name, measure in (("backend", backend_throughput), ("pipeline", pipeline_throughput)):
            one = measure(base_url, 1, baseline_requests)
            sixteen = measure(base_url, 16, args.requests)
            print(f"{name:8s} delay {args.delay:.2f}s: concurrency 1 {one:6.2f} req/s, "
                  f"concurrency 16 {sixteen:6.2f} req/s, ratio {sixteen / one:5.1f}x (target >= 10x)")
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
