"""Retention and orphan clean-up of MEDIA_ROOT/pdf/ (workers.pdf.services)."""

from __future__ import annotations

import os
import time
import uuid
from datetime import timedelta

from django.utils import timezone

from tests.api_fixtures import finish
from tests.pdf.conftest import built
from workers import services
from workers.models import JobStatus
from workers.pdf.services import pdf_delete_expired, pdf_delete_orphans

pytest_plugins = ["tests.api_fixtures"]


def enqueue_build(user, report_id=1):
    return services.job_enqueue(task="pdf.build_report", params={"report_id": report_id}, requested_by=user)


def age(path, hours: float) -> None:
    """Backdate a file's modification time."""
    then = time.time() - hours * 3600
    os.utime(path, (then, then))


def test_files_older_than_the_retention_are_deleted(make_user, media_root, settings, greenroom_stub_broker):
    # Given a 3-day retention, a build finished 4 days ago and one finished yesterday
    settings.GREENROOM_PDF_RETENTION_DAYS = 3
    alice = make_user("alice")
    old = built(enqueue_build(alice, 1), media_root, finished_at=timezone.now() - timedelta(days=4))
    recent = built(enqueue_build(alice, 2), media_root, finished_at=timezone.now() - timedelta(days=1))

    # When the expired files are deleted
    counts = pdf_delete_expired()

    # Then only the old one is gone
    assert counts == {"deleted": 1, "bytes": len(b"%PDF-1.4 fake\n%%EOF\n"), "kept": 1}
    assert not (media_root / "pdf" / f"{old.pk}.pdf").exists()
    assert (media_root / "pdf" / f"{recent.pk}.pdf").exists()
    # and a later clock expires the other one too
    assert pdf_delete_expired(now=timezone.now() + timedelta(days=3))["deleted"] == 1


def test_expired_clean_up_of_a_missing_directory_does_nothing(media_root):
    assert pdf_delete_expired() == {"deleted": 0, "bytes": 0, "kept": 0}
    assert pdf_delete_orphans() == {"temporary": 0, "orphans": 0, "bytes": 0}


def test_orphans_and_stale_temporary_files_are_deleted_after_an_hour(make_user, media_root, greenroom_stub_broker):
    alice = make_user("alice")
    directory = media_root / "pdf"
    directory.mkdir()
    # Given a successful build's file, an old one of a failed build, one whose job row is gone,
    kept = built(enqueue_build(alice, 1), media_root)
    failed = finish(enqueue_build(alice, 2), JobStatus.FAILED)
    (directory / f"{failed.pk}.pdf").write_bytes(b"partial")
    (directory / f"{uuid.uuid4()}.pdf").write_bytes(b"no job")
    # a stale temporary file, a stranger, and a fresh temporary file of a build still running
    (directory / ".abc.x1.tmp").write_bytes(b"temp")
    (directory / "notes.txt").write_bytes(b"?")
    fresh = directory / ".def.x2.tmp"
    fresh.write_bytes(b"temp")
    for path in directory.iterdir():
        if path != fresh:
            age(path, 2)

    # When orphans are deleted
    counts = pdf_delete_orphans()

    # Then only the successful build's file and the fresh temporary file are left
    assert sorted(p.name for p in directory.iterdir()) == sorted([f"{kept.pk}.pdf", fresh.name])
    assert counts == {"temporary": 1, "orphans": 3, "bytes": len(b"partial" b"no job" b"temp" b"?")}


def test_recent_orphans_are_left_for_now(make_user, media_root):
    directory = media_root / "pdf"
    directory.mkdir()
    (directory / f"{uuid.uuid4()}.pdf").write_bytes(b"being finished right now")

    assert pdf_delete_orphans()["orphans"] == 0
    assert pdf_delete_orphans(now=timezone.now() + timedelta(hours=2))["orphans"] == 1
