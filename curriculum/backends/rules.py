"""The offline rules backend: answers curriculum requests from the structured findings, no LLM.

It reads the request's `metadata` (module kind, the image's annotation row, the number of
questions and a wording seed) and answers with the same JSON an LLM is asked for, so its output
goes through the same parser, validation and store as any other backend's.
"""

from __future__ import annotations

import json

from curriculum.backends.base import BackendError, ChatRequest, ChatResponse
from curriculum.rules_qa import build_qa

RULES_VERSION = "rules-v1"


class RulesBackend:
    """Deterministic QA from annotation rows (see `curriculum.rules_qa`)."""

    source = "rules"
    supports_json = True

    def __init__(self, model: str = RULES_VERSION) -> None:
        self.model = model

    def complete(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        """Answer curriculum requests.

        Raises:
            BackendError: a request carries no curriculum metadata (e.g. a judge prompt); the
                rules backend cannot answer free-form prompts.
        """
        return [self._answer(r) for r in requests]

    def close(self) -> None:
        """Nothing to release."""

    def _answer(self, request: ChatRequest) -> ChatResponse:
        meta = request.metadata
        if "kind" not in meta or "row" not in meta:
            raise BackendError("the rules backend only answers curriculum requests (metadata with "
                               "'kind' and 'row'); choose an LLM backend for free-form prompts")
        pairs = build_qa(meta["kind"], meta["row"], int(meta["num_questions"]), int(meta["seed"]),
                         meta["options"])
        text = json.dumps({"qa": pairs}, ensure_ascii=False)
        return ChatResponse(text=text, finish_reason="stop", raw={"rules_version": self.model})
