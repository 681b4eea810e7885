"""Offline QA builders: the same kinds of curriculum QA as the LLM prompts ask for, from rules."""

from curriculum.rules_qa.builders import BUILDERS, build_qa

__all__ = ["BUILDERS", "build_qa"]
