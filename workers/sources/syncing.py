"""Syncing a source: its matching files become documents, by content hash.

A plain function called by the sources.sync_source job (and usable without a broker).
`progress(done, total, message)` is the running job's progress callback.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from workers.documents.models import Document, content_hash
from workers.documents.services import document_embed_enqueue
from workers.errors import PermanentError
from workers.lib import sync
from workers.sources.models import Source, SourceKind

Progress = Callable[[int, int | None, str], None]

# Errors kept in a sync's result; the `failed` count is always exact.
MAX_ERRORS = 100
# Rows per UPDATE ... WHERE pk IN (...): well under SQLite's and PostgreSQL's parameter limits.
UPDATE_BATCH = 500


def _no_progress(done: int, total: int | None, message: str) -> None:
    return None


def source_mirror_dir(source: Source) -> Path:
    """Where a git source given by URL is mirrored."""
    return Path(settings.GREENROOM_SOURCES_DIR) / f"{source.pk}.git"


@contextlib.contextmanager
def _source_files(source: Source) -> Iterator[list[sync.SourceFile]]:
    """The source's matching files; the git repository stays open while they are read."""
    try:
        if source.kind == SourceKind.DIRECTORY:
            yield sync.list_directory(source.location, source.patterns)
            return
        if source.kind == SourceKind.GIT:
            repo = sync.open_git(source.location, source_mirror_dir(source))
            try:
                files = sync.list_git(repo, source.branch, source.patterns)
                yield files
            finally:
                repo.close()
            return
    except sync.SourceUnavailable as exc:
        raise PermanentError(f"source {source.pk} ({source.name}): {exc}") from exc
    raise PermanentError(f"source {source.pk} has an unknown kind {source.kind!r}")


def source_sync(*, source_id: int, progress: Progress = _no_progress) -> dict[str, Any]:
    """Create, update, skip or mark removed the source's documents; enqueue embeds of changed ones.

    Returns `{"created", "updated", "skipped", "removed", "failed", "errors"}`. PermanentError when the
    source does not exist or cannot be read at all; a single unreadable file only counts as failed.
    """
    source = Source.objects.filter(pk=source_id).first()
    if source is None:
        raise PermanentError(f"source {source_id} does not exist")
    counts = {"created": 0, "updated": 0, "skipped": 0, "removed": 0, "failed": 0}
    errors: list[dict[str, str]] = []
    seen: set[str] = set()
    max_bytes = settings.GREENROOM_SOURCE_MAX_FILE_BYTES
    with _source_files(source) as files:
        known = {doc.path: doc for doc in Document.objects.filter(source=source).only(
            "pk", "path", "title", "content_hash", "embedded_hash", "removed"
        )}
        progress(0, len(files), f"{len(files)} files to read")
        for done, file in enumerate(files, start=1):
            # Seen even if it fails to read: an unreadable file still exists, its document stays.
            seen.add(file.path)
            try:
                if file.size > max_bytes:
                    raise sync.UnreadableFile(f"larger than {max_bytes} bytes")
                data = file.read()
                if len(data) > max_bytes:
                    raise sync.UnreadableFile(f"larger than {max_bytes} bytes")
                title, text = sync.decode_document(file.path, data)
            except (sync.UnreadableFile, OSError, KeyError) as exc:
                counts["failed"] += 1
                if len(errors) < MAX_ERRORS:
                    errors.append({"path": file.path, "error": str(exc)})
            else:
                counts[_store(source, known.get(file.path), file.path, title, text)] += 1
            progress(done, len(files), _summary(counts))
    counts["removed"] = _mark_removed(source, seen)
    result: dict[str, Any] = {**counts, "errors": errors}
    Source.objects.filter(pk=source.pk).update(last_synced_at=timezone.now(), last_result=result)
    return result


def _mark_removed(source: Source, seen: set[str]) -> int:
    # Compared in Python: `path NOT IN (<thousands of paths>)` can exceed SQLite's parameter limit.
    stale = [
        pk for pk, path in Document.objects.filter(source=source, removed=False).values_list("pk", "path")
        if path not in seen
    ]
    marked = 0
    for first in range(0, len(stale), UPDATE_BATCH):
        marked += Document.objects.filter(pk__in=stale[first : first + UPDATE_BATCH]).update(removed=True)
    return marked


def _store(source: Source, document: Document | None, path: str, title: str, text: str) -> str:
    """Create or update one document (and enqueue its embed in the same transaction); the outcome."""
    with transaction.atomic():
        if document is None:
            document = Document(source=source, path=path, title=title, text=text)
            document.save()
            outcome = "created"
        elif document.content_hash == content_hash(text) and document.title == title and not document.removed:
            return "skipped"
        else:
            Document.objects.filter(pk=document.pk).update(
                title=title, text=text, content_hash=content_hash(text), removed=False, updated_at=timezone.now()
            )
            document.refresh_from_db()
            outcome = "updated"
        # Only a changed text needs embedding (a renamed title or a file come back may not).
        if settings.GREENROOM_EMBED_ON_SAVE and text.strip() and not document.is_embedded:
            document_embed_enqueue(document=document)
    return outcome


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{count} {name}" for name, count in counts.items() if name != "removed")
