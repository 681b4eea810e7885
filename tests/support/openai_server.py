"""A local OpenAI-compatible HTTP server whose answers a test scripts, and the replies it sends."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def qa_text(n: int, stage_sentence: str = "") -> str:
    """A valid JSON answer with `n` pairs."""
    pairs = [{"question": f"Question number {i} about the layers?", "answer": f"Answer {i}. {stage_sentence}".strip()}
             for i in range(n)]
    return json.dumps({"qa": pairs})


def completion(content: str, finish_reason: str = "stop", prompt_tokens: int = 100,
               completion_tokens: int = 50) -> dict[str, Any]:
    """A `/v1/chat/completions` response body answering `content`, with its token usage."""
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": "test-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


# A reply: (status, headers, JSON body). A script maps (request number, request body) to a reply.
Reply = tuple[int, dict[str, str], dict[str, Any]]
Script = Callable[[int, dict[str, Any]], Reply]


class ScriptedServer:
    """A local OpenAI-compatible `/v1/chat/completions` endpoint on 127.0.0.1 (random port).

    Args:
        script: called with the 0-based request number and the request JSON; returns the reply.
        delay_s: seconds to wait before answering each request (threads answer concurrently).
    """

    def __init__(self, script: Script, delay_s: float = 0.0) -> None:
        self.script, self.delay_s = script, delay_s
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.in_flight = self.max_in_flight = 0
        self.arrivals: list[float] = []  # time.monotonic() of each request
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                with server._lock:
                    number = len(server.requests)
                    server.requests.append(body)
                    server.arrivals.append(time.monotonic())
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                if server.delay_s:
                    time.sleep(server.delay_s)
                status, headers, payload = server.script(number, body)
                with server._lock:
                    server.in_flight -= 1
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test); nothing to answer

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128  # the default backlog of 5 drops connections under a burst

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
