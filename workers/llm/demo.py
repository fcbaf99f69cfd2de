"""Demo data for `make run`: one LLM API record, honest about there being no server behind it."""

from __future__ import annotations

from workers.llm.models import LlmApi

DEMO_NAME = "Local server (demo, inactive)"
# Ollama's default port; nothing is expected to listen there, so the record is inactive and
# "Validate all" skips it. Start an OpenAI-compatible server there (Ollama, llama.cpp, vLLM) and
# activate the record to try validation.
DEMO_BASE_URL = "http://127.0.0.1:11434/v1"


def seed() -> None:
    """Create the demo API once; later calls leave it (and any edits an operator made) alone."""
    LlmApi.objects.get_or_create(name=DEMO_NAME, defaults={"base_url": DEMO_BASE_URL, "is_active": False})
