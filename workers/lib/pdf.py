"""Render a `Report` to a PDF file with reportlab's platypus (no Dramatiq here).

    result = render_report(report, path=media / "pdf" / f"{job_id}.pdf", on_progress=callback)

Memory stays flat however long the report is:

- entries are read from the database in keyset pages of `ENTRY_BATCH` rows, never all at once;
- they become flowables one page at a time (`EntryStream`): a single 30,000-row `Table` would hold
  every cell's Paragraph and be re-measured whole at every page break (quadratic time);
- "Page N of M" needs M before the last page is known: each footer draws a form XObject that is
  defined only when the document is saved, so no page has to be kept for a second pass.

reportlab itself keeps each finished page's (compressed) content stream until `save()`, a few KB per
page; the file is written to a temporary name beside the target and moved into place with
`os.replace`, so readers never see a partial PDF.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from django.db.models import Q
from django.utils import timezone
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from workers.pdf.models import Report, ReportEntry

ProgressCallback = Callable[[int, int], None]

# Entries fetched per query: big enough to keep query overhead negligible, small enough to stay flat.
ENTRY_BATCH = 500
# Rows measured per table split before we know how many fit on the page; grows when a page takes all.
FIRST_SPLIT_ROWS = 64
# A description longer than this is cut: one table row must fit on one page (rows do not split).
DESCRIPTION_MAX = 1500
# The form XObject holding the page total; drawn by every footer, defined at save time.
PAGE_COUNT_FORM = "greenroomPageCount"
FOOTER_FONT = ("Helvetica", 8)
HEADER_ROW = ("Label", "Code", "Description")
# Control characters other than tab and newline are not allowed in PDF text (and break the parser).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class RenderResult:
    """What `render_report` wrote."""

    pages: int
    bytes: int


def markup(text: str) -> str:
    """User text as Paragraph mini-markup: `<`, `>` and `&` escaped, newlines kept as line breaks."""
    return escape(_CONTROL.sub("", text)).replace("\n", "<br/>")


def render_report(report: Report, *, path: Path, on_progress: ProgressCallback | None = None,
                  now: datetime | None = None) -> RenderResult:
    """Write `report` as a PDF at `path` (atomically); return its page count and size.

    `on_progress(done, total)` is called as sections and entry rows are laid out (total = sections +
    entries). Whatever it raises (e.g. JobCancelled) stops the build; no file is left at `path` and
    the temporary file is removed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same directory as the target, so os.replace is a rename on one filesystem. Dot-prefixed and
    # ".tmp": pdf_delete_orphans() recognises (and removes) leftovers of a killed worker.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        pages = _build(report, tmp, on_progress or _ignore, now or timezone.now())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return RenderResult(pages=pages, bytes=path.stat().st_size)


def _ignore(done: int, total: int) -> None:
    pass


class _Progress:
    """Counts laid-out units and passes them on."""

    def __init__(self, total: int, callback: ProgressCallback) -> None:
        self.done, self.total, self.callback = 0, total, callback

    def add(self, units: int) -> None:
        self.done += units
        self.callback(min(self.done, self.total), self.total)


class _Tick(Flowable):
    """A zero-size flowable that reports progress when the frame places it."""

    def __init__(self, progress: _Progress, units: int) -> None:
        super().__init__()
        self.progress, self.units = progress, units

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        return 0, 0

    def draw(self) -> None:
        self.progress.add(self.units)


class _CountingCanvas(Canvas):
    """A canvas that defines the page-total form when the document is saved."""

    page_count = 0

    def save(self) -> None:
        if len(self._code):  # type: ignore[attr-defined]
            self.showPage()
        self.page_count = self.getPageNumber() - 1
        self.beginForm(PAGE_COUNT_FORM)
        self.setFont(*FOOTER_FONT)
        self.setFillColor(colors.grey)
        self.drawString(0, 0, str(self.page_count))
        self.endForm()
        super().save()


class EntryStream(Flowable):
    """The entries table, made one page at a time from an iterator of (label, code, description).

    Its `wrap` claims more room than there is, so the frame always asks it to `split`: it then builds
    a `Table` (header row + the next rows), lets reportlab's own split decide how many rows fit, and
    returns that part followed by itself for the rest. Each page's table has the header row.
    """

    def __init__(self, rows: Iterator[tuple[str, str, str]], *, styles: dict[str, ParagraphStyle],
                 progress: _Progress) -> None:
        super().__init__()
        self._rows = rows
        self._pending: deque[tuple[str, str, str]] = deque()
        self._styles = styles
        self._progress = progress
        self._batch = FIRST_SPLIT_ROWS

    def _fill(self, count: int) -> None:
        while len(self._pending) < count:
            row = next(self._rows, None)
            if row is None:
                return
            self._pending.append(row)

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        self._fill(1)
        if not self._pending:
            return availWidth, 0
        return availWidth, availHeight + 1

    def draw(self) -> None:  # only reached once the stream is empty: nothing left to draw
        pass

    def split(self, availWidth: float, availHeight: float) -> list[Flowable]:
        while True:
            self._fill(self._batch)
            if not self._pending:
                return []
            rows = list(self._pending)[: self._batch]
            parts = self._table(rows, availWidth).split(availWidth, availHeight)
            if not parts:
                return []  # not even one row fits below what is on this page: next page
            if len(parts) == 1 and len(rows) == self._batch and len(self._pending) >= self._batch:
                self._batch *= 2  # the page takes every row we offered: offer more
                continue
            taken = len(rows) if len(parts) == 1 else parts[0]._nrows - 1  # minus the header row
            for _ in range(taken):
                self._pending.popleft()
            # Next page offers about what this one took, plus slack for shorter rows.
            self._batch = max(FIRST_SPLIT_ROWS // 4, taken + taken // 4 + 4)
            self._progress.add(taken)
            # reportlab marks a flowable that did not fit as postponed and gives up if it fails again;
            # this one went on, so what is left of it starts afresh.
            self.__dict__.pop("_postponed", None)
            self._fill(1)
            return [parts[0], self] if self._pending else [parts[0]]

    def _table(self, rows: list[tuple[str, str, str]], width: float) -> Table:
        cell, head = self._styles["cell"], self._styles["head"]
        data = [[Paragraph(text, head) for text in HEADER_ROW]]
        data += [[Paragraph(markup(label), cell), Paragraph(markup(code), cell), Paragraph(markup(desc), cell)]
                 for label, code, desc in rows]
        table = Table(data, colWidths=[width * 0.3, width * 0.15, width * 0.55], repeatRows=1)
        table.setStyle(TABLE_STYLE)
        return table


TABLE_STYLE = TableStyle([
    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e5e7eb")),
    ("LINEBELOW", (0, 0), (-1, 0), 0.75, colors.black),
    ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.HexColor("#d1d5db")),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("TOPPADDING", (0, 0), (-1, -1), 2),
    ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
])


def entry_rows(report_id: int, *, batch: int = ENTRY_BATCH) -> Iterator[tuple[str, str, str]]:
    """The report's entries in order, read in keyset pages (no long-open cursor, no OFFSET scans)."""
    position, pk = -1, 0
    while True:
        page = list(
            ReportEntry.objects.filter(report_id=report_id)
            .filter(Q(position__gt=position) | Q(position=position, pk__gt=pk))
            .order_by("position", "pk")
            .values_list("position", "pk", "label", "code", "description")[:batch]
        )
        for _, _, label, code, description in page:
            if len(description) > DESCRIPTION_MAX:
                description = description[: DESCRIPTION_MAX - 1] + "…"
            yield label, code, description
        if len(page) < batch:
            return
        position, pk = page[-1][0], page[-1][1]


def _styles() -> dict[str, ParagraphStyle]:
    sheet = getSampleStyleSheet()
    return {
        "title": sheet["Title"],
        "heading": sheet["Heading2"],
        "table_heading": ParagraphStyle("table_heading", parent=sheet["Heading2"], keepWithNext=0),
        "body": sheet["BodyText"],
        "meta": ParagraphStyle("meta", parent=sheet["BodyText"], textColor=colors.grey, fontSize=8),
        "cell": ParagraphStyle("cell", parent=sheet["BodyText"], fontSize=8, leading=10),
        "head": ParagraphStyle("head", parent=sheet["BodyText"], fontName="Helvetica-Bold", fontSize=8, leading=10),
    }


def _build(report: Report, target: Path, on_progress: ProgressCallback, now: datetime) -> int:
    styles = _styles()
    sections = list(report.sections.order_by("position", "pk").values_list("heading", "body"))
    entry_count = report.entries.count()
    progress = _Progress(len(sections) + entry_count, on_progress)
    progress.add(0)  # the total is known: say so before the first page is laid out

    story: list[Flowable] = [
        Paragraph(markup(report.title), styles["title"]),
        Paragraph(markup(f"Generated {now:%Y-%m-%d %H:%M} UTC · {entry_count} entries"), styles["meta"]),
        Spacer(1, 4 * mm),
    ]
    for heading, body in sections:
        story.append(Paragraph(markup(heading), styles["heading"]))
        for paragraph in re.split(r"\n\s*\n", body.strip()):
            if paragraph:
                story.append(Paragraph(markup(paragraph), styles["body"]))
        story.append(_Tick(progress, 1))
    if entry_count:
        # Not keepWithNext (as headings are): keeping it with a stream that always claims more room
        # than there is would make reportlab give up on the pair.
        story.append(Paragraph("Entries", styles["table_heading"]))
        story.append(EntryStream(entry_rows(report.pk), styles=styles, progress=progress))

    title = _CONTROL.sub("", report.title)

    def decorate(canvas: Canvas, doc: Any) -> None:
        _header_footer(canvas, doc, title)

    doc = SimpleDocTemplate(
        str(target), pagesize=A4, title=title, author="Greenroom",
        leftMargin=18 * mm, rightMargin=18 * mm, topMargin=20 * mm, bottomMargin=18 * mm,
    )
    doc.build(story, onFirstPage=decorate, onLaterPages=decorate, canvasmaker=_CountingCanvas)
    return int(doc.canv.page_count)


def _header_footer(canvas: Canvas, doc: Any, title: str) -> None:
    width, height = doc.pagesize
    canvas.saveState()
    canvas.setFont(*FOOTER_FONT)
    canvas.setFillColor(colors.grey)
    shown = title if len(title) <= 90 else title[:89] + "…"
    canvas.drawString(doc.leftMargin, height - 12 * mm, shown)
    canvas.line(doc.leftMargin, height - 13.5 * mm, width - doc.rightMargin, height - 13.5 * mm)
    label = f"Page {canvas.getPageNumber()} of "
    x, y = width - doc.rightMargin - stringWidth(label + "0000", *FOOTER_FONT), 10 * mm
    canvas.drawString(x, y, label)
    canvas.translate(x + stringWidth(label, *FOOTER_FONT), y)
    canvas.doForm(PAGE_COUNT_FORM)  # the total, defined when the document is saved
    canvas.restoreState()
