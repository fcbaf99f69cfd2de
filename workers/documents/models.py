"""Models of the documents app: documents and their embedded chunks."""

from __future__ import annotations

import hashlib
from typing import Any

from django.db import models
from django.db.models import Q


def content_hash(text: str) -> str:
    """The SHA-256 of a text (hex): what `Document.content_hash` holds."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class Document(models.Model):
    """A text to search. Documents of a source are deleted with it (they are copies of its files)."""

    title = models.CharField(max_length=300)
    text = models.TextField(blank=True)
    source = models.ForeignKey(
        "sources.Source", null=True, blank=True, on_delete=models.CASCADE, related_name="documents"
    )
    path = models.CharField(max_length=1000, blank=True, help_text="The file's path within its source.")
    content_hash = models.CharField(max_length=64, editable=False)
    # The content_hash of the text that the stored chunks were made from; empty if never embedded.
    embedded_hash = models.CharField(max_length=64, blank=True, editable=False)
    removed = models.BooleanField(default=False, help_text="Its file is gone from the source (left out of search).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "path"],
                condition=Q(source__isnull=False) & ~Q(path=""),
                name="documents_document_unique_source_path",
            )
        ]

    def __str__(self) -> str:
        return self.title

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The hash always follows the text, however the document was changed.
        self.content_hash = content_hash(self.text)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "text" in update_fields:
            kwargs["update_fields"] = {*update_fields, "content_hash"}
        super().save(*args, **kwargs)

    @property
    def is_embedded(self) -> bool:
        return bool(self.embedded_hash) and self.embedded_hash == self.content_hash


class Chunk(models.Model):
    """A piece of a document's text with its embedding (float32 bytes, L2-normalised)."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    position = models.PositiveIntegerField()
    text = models.TextField()
    start = models.PositiveIntegerField(help_text="Offset of the chunk's first character in the document text.")
    end = models.PositiveIntegerField(help_text="Offset just past the chunk's last character.")
    vector = models.BinaryField()
    dim = models.PositiveIntegerField()
    backend = models.CharField(max_length=50)

    class Meta:
        ordering = ["document", "position"]
        constraints = [
            models.UniqueConstraint(fields=["document", "position"], name="documents_chunk_unique_position")
        ]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.position}"
