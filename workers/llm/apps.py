"""The llm app: OpenAI-compatible LLM API records and their validation."""

from __future__ import annotations

from django.apps import AppConfig


class LlmConfig(AppConfig):
    name = "workers.llm"
    label = "llm"
    default_auto_field = "django.db.models.BigAutoField"
