"""Split text into overlapping chunks for embedding: plain functions, no Django, no Dramatiq.

Chunks are cut by characters (so their size is bounded whatever the language) but snapped to word
boundaries when one is near, so that a word is not cut in half unless it is longer than a chunk.
The same text and settings always give the same chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

# A cut backs off to the last whitespace only within this fraction of the chunk's end; past it, a
# very long "word" (a URL, a base64 blob) is cut where the size says.
SNAP_WINDOW = 0.5


@dataclass(frozen=True)
class TextChunk:
    """A piece of a text: `text == source[start:end]`."""

    position: int
    start: int
    end: int
    text: str


def chunk_text(text: str, *, size: int, overlap: int) -> list[TextChunk]:
    """Overlapping chunks of at most `size` characters, consecutive ones sharing about `overlap`.

    Leading/trailing whitespace of each chunk is left out (offsets still point into `text`). Empty or
    whitespace-only text gives no chunks.
    """
    if size <= 0:
        raise ValueError(f"chunk size must be positive, not {size}")
    if not 0 <= overlap < size:
        raise ValueError(f"chunk overlap must be in [0, size), not {overlap}")
    chunks: list[TextChunk] = []
    length = len(text)
    start = _skip_space(text, 0)
    while start < length:
        end = min(start + size, length)
        if end < length and not text[end].isspace():
            # Back off to the last whitespace, if there is one late enough in the chunk.
            floor = start + int(size * SNAP_WINDOW)
            cut = end
            while cut > floor and not text[cut - 1].isspace():
                cut -= 1
            if cut > floor:
                end = cut
        stop = end
        while stop > start and text[stop - 1].isspace():
            stop -= 1
        chunks.append(TextChunk(position=len(chunks), start=start, end=stop, text=text[start:stop]))
        if end >= length:
            break
        # The next chunk starts `overlap` characters back, moved forward to the start of a word, and
        # always past this chunk's start (so the loop ends even with a large overlap).
        nxt = max(end - overlap, start + 1)
        if nxt < end and nxt > 0 and not text[nxt - 1].isspace():
            word_start = nxt
            while word_start < end and not text[word_start].isspace():
                word_start += 1
            if word_start < end:
                nxt = word_start
        start = _skip_space(text, nxt)
    return chunks


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index].isspace():
        index += 1
    return index
