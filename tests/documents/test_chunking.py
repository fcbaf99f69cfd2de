"""Chunking: bounded, overlapping, deterministic pieces whose offsets point into the text."""

from __future__ import annotations

import itertools

import pytest

from workers.lib.chunking import chunk_text

TEXT = " ".join(f"word{n}" for n in range(400))


def test_empty_and_blank_text_give_no_chunks():
    assert chunk_text("", size=100, overlap=10) == []
    assert chunk_text(" \n\t ", size=100, overlap=10) == []


def test_chunks_are_bounded_and_their_offsets_point_into_the_text():
    chunks = chunk_text(TEXT, size=120, overlap=30)

    assert len(chunks) > 5
    for position, chunk in enumerate(chunks):
        assert chunk.position == position
        assert 0 < len(chunk.text) <= 120
        assert TEXT[chunk.start : chunk.end] == chunk.text


def test_chunks_cover_the_text_and_overlap():
    chunks = chunk_text(TEXT, size=120, overlap=30)

    assert chunks[0].start == 0
    assert chunks[-1].end == len(TEXT)
    for before, after in itertools.pairwise(chunks):
        assert after.start < before.end  # overlapping
        assert after.start > before.start  # always moving forward


def test_cuts_fall_on_word_boundaries():
    for chunk in chunk_text(TEXT, size=120, overlap=30):
        assert chunk.text.startswith("word")
        assert chunk.text.split()[-1].removeprefix("word").isdigit()
        assert chunk.end == len(TEXT) or TEXT[chunk.end] == " "


def test_a_word_longer_than_a_chunk_is_cut():
    chunks = chunk_text("x" * 250, size=100, overlap=10)

    assert [len(c.text) for c in chunks] == [100, 100, 70]


def test_chunking_is_deterministic():
    assert chunk_text(TEXT, size=200, overlap=50) == chunk_text(TEXT, size=200, overlap=50)


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (100, 100), (100, -1)])
def test_invalid_settings_are_refused(size, overlap):
    with pytest.raises(ValueError):
        chunk_text(TEXT, size=size, overlap=overlap)
