"""Fixtures of the pdf tests: reports of any length, a private MEDIA_ROOT."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from tests.api_fixtures import finish
from workers.models import Job
from workers.pdf.models import Report, ReportEntry, ReportSection


@pytest.fixture
def media_root(settings: Any, tmp_path: Path) -> Path:
    """MEDIA_ROOT in the test's own directory (workers started by the test get the same one)."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    return root


def make_report(owner: Any, *, title: str = "Protocol labels", sections: int = 2, entries: int = 50,
                description: str = "A description of the entry that is long enough to wrap once or twice "
                                   "in the narrow description column of the table.") -> Report:
    """A report with `sections` sections and `entries` table rows."""
    report = Report.objects.create(title=title, owner=owner)
    ReportSection.objects.bulk_create(
        ReportSection(report=report, position=i, heading=f"Section {i + 1}",
                      body=f"First paragraph of section {i + 1}.\n\nSecond paragraph, with a line\nbreak.")
        for i in range(sections)
    )
    ReportEntry.objects.bulk_create(
        (ReportEntry(report=report, position=i, label=f"Label {i + 1}", code=f"P-{i + 1:05d}", description=description)
         for i in range(entries)),
        batch_size=500,
    )
    return report


@pytest.fixture
def report_factory(db: None) -> Callable[..., Report]:
    return make_report


def built(job: Job, media_root: Path, content: bytes = b"%PDF-1.4 fake\n%%EOF\n", **fields: Any) -> Job:
    """Mark `job` SUCCESSFUL with its file in place, as a worker would leave it."""
    (media_root / "pdf").mkdir(exist_ok=True)
    (media_root / "pdf" / f"{job.pk}.pdf").write_bytes(content)
    fields.setdefault("finished_at", timezone.now())
    return finish(job, result={"path": f"pdf/{job.pk}.pdf", "pages": 1, "bytes": len(content)}, **fields)
