"""Demo data: a few small documents, embedded through the usual service (idempotent)."""

from __future__ import annotations

from workers.documents.models import Document
from workers.documents.services import document_create

DEMO_DOCUMENTS = {
    "Brewing tea": "Warm the pot, add one spoon of leaves per cup, pour water just off the boil and steep "
    "for three to five minutes. Green tea prefers cooler water, around eighty degrees.",
    "Backing up PostgreSQL": "Use pg_dump for a logical backup of one database, or pg_basebackup with WAL "
    "archiving for point-in-time recovery. Test restores regularly.",
    "Caring for houseplants": "Most houseplants die of too much water, not too little. Let the soil dry "
    "between waterings and give them bright, indirect light.",
}


def seed() -> None:
    """Create the demo documents that are missing (by title, among documents without a source)."""
    existing = set(Document.objects.filter(source=None, title__in=DEMO_DOCUMENTS).values_list("title", flat=True))
    for title, text in DEMO_DOCUMENTS.items():
        if title not in existing:
            document_create(title=title, text=text)
