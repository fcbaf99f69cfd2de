"""Models of the sources app: where documentation comes from."""

from __future__ import annotations

from typing import Any

from django.db import models


class SourceKind(models.TextChoices):
    DIRECTORY = "directory", "Directory"
    GIT = "git", "Git repository"


DEFAULT_INCLUDE = "*.md,*.txt,*.rst"


class Source(models.Model):
    """A directory or git repository whose matching files become documents (sources.sync_source)."""

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=20, choices=SourceKind.choices, default=SourceKind.DIRECTORY)
    location = models.CharField(
        max_length=1000, help_text="A directory path, or a git repository path or URL (file://, https://)."
    )
    branch = models.CharField(max_length=200, blank=True, help_text="Git only; empty means the default (HEAD).")
    include = models.CharField(
        max_length=500,
        default=DEFAULT_INCLUDE,
        help_text="Comma-separated globs; one with '/' matches the path, others the file name.",
    )
    active = models.BooleanField(default=True, help_text="Inactive sources are left out of sources.sync_all.")
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_result: models.JSONField[Any] = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def patterns(self) -> list[str]:
        return [part.strip() for part in self.include.split(",") if part.strip()]
