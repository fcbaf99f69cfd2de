"""Demo data for `make run`: a few reports, one long enough to span several pages."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from workers.pdf.models import Report, ReportEntry, ReportSection

DEPARTMENTS = ("Legislative", "Finance", "Education", "Health", "Public works", "Legal")


def seed(owner: Any) -> None:
    """Create the demo reports of `owner` unless any report exists (safe to call on every start)."""
    if Report.objects.exists():
        return
    with transaction.atomic():
        _report(owner, "Weekly agenda", entries=12, sections=2)
        _report(owner, "Protocol labels: session 2026/41", entries=240, sections=3)
        _report(owner, "Escaping check: <b>not bold</b> & <script>", entries=5, sections=1)


def _report(owner: Any, title: str, *, entries: int, sections: int) -> Report:
    report = Report.objects.create(title=title, owner=owner)
    ReportSection.objects.bulk_create(
        ReportSection(
            report=report, position=i, heading=f"{i + 1}. {DEPARTMENTS[i % len(DEPARTMENTS)]}",
            body=(f"Items received by the {DEPARTMENTS[i % len(DEPARTMENTS)].lower()} department this week.\n\n"
                  "Each entry below lists the protocol label, its code and what was filed."),
        )
        for i in range(sections)
    )
    ReportEntry.objects.bulk_create(
        ReportEntry(
            report=report, position=i, label=f"Protocol {2026_000 + i}", code=f"P-{i + 1:05d}",
            description=f"Filed by the {DEPARTMENTS[i % len(DEPARTMENTS)]} department; "
                        f"{'urgent, ' if i % 7 == 0 else ''}registered on day {i % 28 + 1}.",
        )
        for i in range(entries)
    )
    return report
