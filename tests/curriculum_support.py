"""Shared pieces of the curriculum tests: a small annotation table with reports, configs, and a
local OpenAI-compatible HTTP server whose answers a test scripts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
from hydra import compose, initialize_config_dir

from dataset.clinical import BIOMARKERS

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"

# (findings, report) per image; stages follow from the findings by the clinical rules.
CASES: list[tuple[dict[str, Any], str]] = [
    ({}, "Normal retinal layers with a preserved foveal contour. No drusen, no fluid. Healthy retina."),
    ({"drusen": 1, "drusen_size": "small", "drusen_location": "nasal", "rpe_elevation": 1},
     "A few small drusen nasally with mild RPE elevation. No fluid. Early AMD."),
    ({"drusen": 1, "drusen_size": "large", "drusen_count": "many", "rpe_elevation": 1},
     "Many large drusen elevating the RPE. No subretinal or intraretinal fluid."),
    ({"hypertransmission": 1, "hypertransmission_type": "cRORA", "rpe_atrophy": 1, "rpe_atrophy_state": "atrophy"},
     "Wide hypertransmission under a stretch of lost RPE (cRORA). Consistent with late dry AMD."),
    ({"shrm": 1, "shrm_amount": "small", "fibrosis": 1},
     "Subretinal hyperreflective material and a fibrotic scar, no fluid. Late wet AMD (inactive)."),
    ({"srf": 1, "srf_volume": "large", "srf_location": "foveal", "irf": 1, "irf_volume": "small"},
     "Large subretinal fluid at the fovea with small intraretinal cysts. Active late wet AMD."),
]


def write_curriculum_table(folder: Path, copies: int = 1, splits: tuple[str, ...] = ("train", "validation", "test"),
                           with_reports: bool = True) -> Path:
    """`len(CASES) * copies` images, one patient each, splits cycling over `splits`."""
    rows = []
    for i in range(len(CASES) * copies):
        findings, report = CASES[i % len(CASES)]
        row = {"image_id": f"img{i:04d}", "image_path": f"images/img{i:04d}.png", "patient_id": f"p{i}",
               "eye": "left" if i % 2 else "right", "split": splits[i % len(splits)], "age": 60 + i % 30,
               "sex": "female" if i % 3 else "male", "visual_acuity_logmar": 0.1 * (i % 5), "quality": 70}
        row.update({b: 0 for b in BIOMARKERS})
        row.update(findings)
        if with_reports:
            row["report"] = report
        rows.append(row)
    folder.mkdir(parents=True, exist_ok=True)
    table = folder / "annotations.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    return table


def compose_config(config_name: str, tmp_path: Path, overrides: list[str]) -> Any:
    """A composed config that writes only under `tmp_path`."""
    base = [f"paths.root_dir={ROOT}", f"paths.output_dir={tmp_path / 'outputs'}", f"run_dir={tmp_path / 'run'}"]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name=config_name, overrides=base + overrides)


def qa_text(n: int, stage_sentence: str = "") -> str:
    """A valid JSON answer with `n` pairs."""
    pairs = [{"question": f"Question number {i} about the layers?", "answer": f"Answer {i}. {stage_sentence}".strip()}
             for i in range(n)]
    return json.dumps({"qa": pairs})


def completion(content: str, finish_reason: str = "stop", prompt_tokens: int = 100,
               completion_tokens: int = 50) -> dict[str, Any]:
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


# Each token of the tiny chat model decodes to a whole Q/A pair, so even its random generations parse.
TINY_PHRASES = ["Q: Can you see the retinal layers?\nA: Yes, they are visible.\n",
                "Q: Is the image in focus?\nA: Mostly, with some speckle.\n",
                "Q: Which part of the scan is darkest?\nA: The vitreous at the top.\n",
                "Q: Is the foveal pit visible?\nA: Yes, in the centre.\n",
                "Q: Where is the brightest band?\nA: Near the bottom of the retina.\n",
                "Q: Does the choroid show vessels?\nA: Yes, as dark lumens.\n"]


def make_tiny_chat_model(folder: Path) -> Path:
    """Save a tiny random LlamaForCausalLM with a word-level tokenizer and a chat template."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<unk>"]
    vocab = {token: i for i, token in enumerate(specials + TINY_PHRASES)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", bos_token="<s>",
                                        eos_token="</s>", unk_token="<unk>")
    tokenizer.chat_template = ("{% for m in messages %}{{ m['content'] }}\n{% endfor %}"
                               "{% if add_generation_prompt %}<s>{% endif %}")
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
                         pad_token_id=0, bos_token_id=1, eos_token_id=2)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.lm_head.weight[:4] = 0  # special tokens get logit 0, so phrases dominate some steps
    model.generation_config.do_sample = True
    model.save_pretrained(folder)
    return folder
