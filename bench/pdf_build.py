#!/usr/bin/env python
"""Benchmark: pages per second and peak memory of building a report PDF (`workers.lib.pdf`).

    .venv/bin/python bench/pdf_build.py [--pages 10,100,1000] [--runs 1]

Self-contained, like bench/progress_throttle.py: a temporary SQLite database and var/ directory,
migrated here and removed afterwards; the broker URL points at a socket nothing listens on.

For each size it creates a report of about that many pages (2 sections, then a table of entries
whose descriptions wrap onto two lines, ~29 rows a page), then builds it in a **fresh child process**
(this script with `--child`), as a worker would: Django set up with the whole catalogue imported,
the report re-fetched, `render_report` with a progress callback. The child reports its resident
memory before the build and its peak (`ru_maxrss`) after, so each figure is one build's alone.
Prints a table; no assertion on timing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
# Table rows per page with DESCRIPTION (measured: 1,000 pages of entries take ~29,000 rows).
ROWS_PER_PAGE = 29
DESCRIPTION = ("Protocol label printed on the folder cover; it carries the registration number, the date "
               "and the department that received the document.")


def configure(tmp: Path) -> None:
    """Environment for a private run; must happen before django.setup()."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings"
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ["GREENROOM_VAR_DIR"] = str(tmp / "var")
    os.environ["MEDIA_ROOT"] = str(tmp / "media")
    # Never the machine's Redis: a socket nothing listens on (this benchmark sends no message).
    os.environ["GREENROOM_BROKER_URL"] = f"unix://{tmp / 'no-redis.sock'}"
    os.environ.setdefault("GREENROOM_LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(BASE_DIR))


def rss_mib() -> float:
    """Current resident memory of this process (MiB)."""
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def child(report_id: int) -> int:
    """Build one report the way the job does and print the figures as JSON."""
    import django

    django.setup()
    from django.conf import settings

    from workers.lib.pdf import render_report
    from workers.pdf.models import Report

    before = rss_mib()
    calls = 0

    def on_progress(done: int, total: int) -> None:
        nonlocal calls
        calls += 1

    report = Report.objects.get(pk=report_id)
    started = time.perf_counter()
    result = render_report(report, path=Path(settings.MEDIA_ROOT) / "pdf" / f"bench-{report_id}.pdf",
                           on_progress=on_progress)
    seconds = time.perf_counter() - started
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = peak_kib / 2**20 if sys.platform == "darwin" else peak_kib / 1024
    print(json.dumps({"pages": result.pages, "bytes": result.bytes, "seconds": seconds, "rss_before": before,
                      "rss_peak": peak, "progress_calls": calls}))
    return 0


def make_report(pages: int) -> int:
    from django.contrib.auth import get_user_model

    from workers.pdf.models import Report, ReportEntry, ReportSection

    owner, _ = get_user_model().objects.get_or_create(username="bench")
    report = Report.objects.create(title=f"Benchmark report, {pages} pages", owner=owner)
    ReportSection.objects.bulk_create(
        ReportSection(report=report, position=i, heading=f"Section {i + 1}", body="Some text.\n\nMore text." * 20)
        for i in range(2)
    )
    ReportEntry.objects.bulk_create(
        (ReportEntry(report=report, position=i, label=f"Protocol {i + 1}", code=f"P-{i + 1:06d}",
                     description=DESCRIPTION) for i in range(pages * ROWS_PER_PAGE)),
        batch_size=2000,
    )
    return report.pk


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", default="10,100,1000", help="report sizes in pages, comma-separated")
    parser.add_argument("--runs", type=int, default=1, help="builds per size (each in a fresh process)")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        configure(Path(os.environ["GREENROOM_BENCH_TMP"]))
        return child(args.child)

    tmp = Path(tempfile.mkdtemp(prefix="greenroom-bench-pdf-"))
    try:
        configure(tmp)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", interactive=False, verbosity=0)
        sizes = [int(x) for x in args.pages.split(",") if x.strip()]
        reports = {size: make_report(size) for size in sizes}
        print(f"PDF build benchmark — {time.strftime('%Y-%m-%d %H:%M')}, Python {platform.python_version()}, "
              f"{os.cpu_count()} CPUs, SQLite, one fresh process per build")
        print()
        header = (f"{'target':>7} {'entries':>8} {'pages':>6} {'size':>9} {'seconds':>8} {'pages/s':>8} "
                  f"{'RSS before':>11} {'peak RSS':>9}")
        print(header)
        print("-" * len(header))
        for size in sizes:
            for _ in range(args.runs):
                out = subprocess.run(
                    [sys.executable, __file__, "--child", str(reports[size])],
                    env={**os.environ, "GREENROOM_BENCH_TMP": str(tmp)}, capture_output=True, text=True, check=True,
                )
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"{size:>7} {size * ROWS_PER_PAGE:>8,} {r['pages']:>6,} {r['bytes'] / 2**20:>7.1f}MB "
                      f"{r['seconds']:>8.2f} {r['pages'] / r['seconds']:>8.1f} {r['rss_before']:>9.0f}MB "
                      f"{r['rss_peak']:>7.0f}MB")
        print()
        print("RSS before: the child after django.setup() (catalogue imported), before the build.")
        print("peak RSS: the child's ru_maxrss after the build (includes 'before').")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
