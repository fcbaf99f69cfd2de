"""Demo data: a directory source reading the project's own docs/ folder (idempotent)."""

from __future__ import annotations

from django.conf import settings

from workers.sources.models import Source, SourceKind

DEMO_NAME = "Greenroom docs"


def seed() -> None:
    """Create the demo source if it is missing; never touches one that exists."""
    Source.objects.get_or_create(
        name=DEMO_NAME,
        defaults={"kind": SourceKind.DIRECTORY, "location": str(settings.BASE_DIR / "docs"), "include": "*.md"},
    )
