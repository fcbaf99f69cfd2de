"""LLM APIs (OpenAI-compatible endpoints) and the models each one offers.

The API key is kept out of every place a person or a log might see it: `editable=False` keeps it
out of every ModelForm (the admin sets it through a write-only field), `__str__`/`__repr__` show the
name only, and views show `key_hint` at most.
"""

from __future__ import annotations

from django.db import models

from workers.lib.llm import MODEL_ID_MAX_LENGTH, mask_key


class LlmApiStatus(models.TextChoices):
    NEVER = "never", "never checked"
    OK = "ok", "ok"
    FAILED = "failed", "failed"


class LlmApi(models.Model):
    """An OpenAI-compatible API: where it is, its key, and how its last validation went."""

    name = models.CharField(max_length=100, unique=True)
    base_url = models.URLField(
        max_length=500, help_text="e.g. https://api.openai.com/v1 or http://127.0.0.1:11434 (with or without /v1)"
    )
    # Sent as `Authorization: Bearer <key>`; never shown, logged or serialised (see the module docstring).
    api_key = models.CharField(max_length=500, blank=True, editable=False)
    is_active = models.BooleanField(default=True, help_text="Only active APIs are validated and used.")
    last_status = models.CharField(max_length=10, choices=LlmApiStatus.choices, default=LlmApiStatus.NEVER)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name",)
        verbose_name = "LLM API"
        verbose_name_plural = "LLM APIs"

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<LlmApi {self.pk}: {self.name!r}>"

    @property
    def key_hint(self) -> str:
        """`sk-…abcd`, or "" without a key: enough to tell keys apart, not to use one."""
        return mask_key(self.api_key)


class LlmModel(models.Model):
    """A model an API listed at least once; `available` is whether its latest listing had it."""

    api = models.ForeignKey(LlmApi, on_delete=models.CASCADE, related_name="models")
    model_id = models.CharField(max_length=MODEL_ID_MAX_LENGTH)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    available = models.BooleanField(default=True)

    class Meta:
        ordering = ("api", "model_id")
        constraints = [models.UniqueConstraint(fields=["api", "model_id"], name="llm_model_unique_per_api")]
        verbose_name = "LLM model"

    def __str__(self) -> str:
        return self.model_id

    def __repr__(self) -> str:
        return f"<LlmModel {self.pk}: {self.model_id!r} of API {self.api_id}>"
