"""The renderer (workers.lib.pdf) on its own: no broker, no job."""

from __future__ import annotations

import base64
import re
import zlib
from pathlib import Path

import pytest

from workers.lib import pdf


def page_objects(data: bytes) -> int:
    """Pages in a PDF file: '/Type /Page' objects (not '/Pages')."""
    return len(re.findall(rb"/Type /Page(?!s)", data))


def text_of(data: bytes) -> bytes:
    """Every content stream of the file (reportlab's ASCII85 + Flate), decoded and joined."""
    chunks = []
    for match in re.finditer(rb"stream\r?\n(.*?)endstream", data, re.S):
        raw = match.group(1).strip()
        if raw.endswith(b"~>"):
            raw = base64.a85decode(raw[:-2])
        try:
            chunks.append(zlib.decompress(raw))
        except zlib.error:
            chunks.append(raw)
    return b"\n".join(chunks)


def test_a_long_report_renders_to_a_multi_page_pdf(django_user_model, report_factory, tmp_path):
    # Given a report whose table needs several pages
    owner = django_user_model.objects.create_user("owner")
    report = report_factory(owner, entries=400)
    target = tmp_path / "pdf" / "out.pdf"
    calls: list[tuple[int, int]] = []

    # When it is rendered
    result = pdf.render_report(report, path=target, on_progress=lambda done, total: calls.append((done, total)))

    # Then the file is a complete PDF with as many pages as reportlab says
    data = target.read_bytes()
    assert data.startswith(b"%PDF-")
    assert data.rstrip().endswith(b"%%EOF")
    assert result.pages > 5
    assert page_objects(data) == result.pages
    assert result.bytes == len(data)
    # with every page numbered against the total, and the table header repeated on each table page
    text = text_of(data)
    assert b"(Page 3 of ) Tj" in text
    assert re.search(rb"\(%d\) Tj" % result.pages, text)
    assert text.count(b"(Label) Tj") >= result.pages - 1
    assert b"(Label 400) Tj" in text
    # and progress went from 0 up to sections + entries
    assert calls[0] == (0, 402)
    assert calls[-1] == (402, 402)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    # and nothing else was left in the directory
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.pdf"]


def test_a_report_without_entries_renders_one_page(django_user_model, report_factory, tmp_path):
    report = report_factory(django_user_model.objects.create_user("owner"), sections=1, entries=0)

    result = pdf.render_report(report, path=tmp_path / "empty.pdf")

    assert result.pages == 1


def test_markup_in_user_text_is_escaped_not_interpreted(django_user_model, report_factory, tmp_path):
    # Given a title and an entry holding Paragraph mini-markup and HTML
    owner = django_user_model.objects.create_user("owner")
    # (\x07: a control character to strip; PostgreSQL refuses to even store NUL)
    report = report_factory(owner, title="<script>alert(1)</script> & <b>bold</b>", entries=3,
                            description="x < y && <font size=40>big</font>\x07")

    # When it is rendered, reportlab does not choke on it
    result = pdf.render_report(report, path=tmp_path / "escaped.pdf")

    # Then the text shows literally (the page header draws the title in one piece)
    text = text_of((tmp_path / "escaped.pdf").read_bytes())
    assert result.pages == 1
    assert b"(<script>alert\\(1\\)</script> & <b>bold</b>) Tj" in text
    # (Paragraph draws its text in fragments cut at entities; joined, they read as typed)
    assert b"x < y && <font size=40>big</font>" in b"".join(re.findall(rb"\((.*?)\) Tj", text))
    # and the markup was not obeyed: no 40-point text, no bold font beyond the table header's
    assert b" 40 Tf" not in text


def test_markup_escapes_xml_specials_and_keeps_line_breaks():
    assert pdf.markup("a < b & c > d\nnext") == "a &lt; b &amp; c &gt; d<br/>next"


def test_a_failed_render_leaves_no_file_at_the_target_and_no_temporary_file(django_user_model, report_factory,
                                                                            tmp_path):
    # Given a render that fails half-way (the progress callback raising, as a cancel would)
    report = report_factory(django_user_model.objects.create_user("owner"), entries=300)
    target = tmp_path / "pdf" / "broken.pdf"

    def explode(done: int, total: int) -> None:
        if done > 100:
            raise RuntimeError("stop here")

    # When it is rendered
    with pytest.raises(RuntimeError, match="stop here"):
        pdf.render_report(report, path=target, on_progress=explode)

    # Then there is no file at all: neither a partial PDF nor the temporary one
    assert list(target.parent.iterdir()) == []


def test_a_new_render_replaces_the_old_file_atomically(django_user_model, report_factory, tmp_path: Path):
    report = report_factory(django_user_model.objects.create_user("owner"), entries=5)
    target = tmp_path / "same.pdf"
    target.write_bytes(b"old")

    pdf.render_report(report, path=target)

    assert target.read_bytes().startswith(b"%PDF-")


def test_entry_rows_pages_through_entries_in_order(django_user_model, report_factory):
    report = report_factory(django_user_model.objects.create_user("owner"), entries=23)

    rows = list(pdf.entry_rows(report.pk, batch=5))

    assert [label for label, _, _ in rows] == [f"Label {i}" for i in range(1, 24)]
