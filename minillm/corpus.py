"""Corpora: the text a model learns from, one sentence (or line) per entry.

Two presets ship with the project: the notebook's six sentences about cats and dogs, and
twenty original "country-style" lines written for this project (not real song lyrics). Users
can paste or upload their own text; `load_corpus` checks it against limits and explains what
is wrong in plain words.

>>> load_corpus("the cat sat\\n\\n  the dog sat  ").lines
('the cat sat', 'the dog sat')
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

#: The notebook's corpus, exactly.
CATS_AND_DOGS = (
    "the cat sat on the mat",
    "the dog sat on the rug",
    "the cat chased the mouse",
    "the dog chased the ball",
    "the cat slept on the mat",
    "the dog barked at the mailman",
)

#: Twenty original lines in a country-song mood (written for MiniLLM Lab).
COUNTRY_STYLE = (
    "the old truck rolls down the dusty road",
    "my boots are worn from the long hot summer",
    "the radio plays a song about the river",
    "she waves goodbye from the front porch light",
    "the river runs slow past the cotton field",
    "i left my heart on the dusty road",
    "the porch light burns for the ones who roam",
    "daddy fixed the fence before the rain came down",
    "the rain came down on the old tin roof",
    "we danced all night at the county fair",
    "the fiddle played and the moon was high",
    "my dog sleeps by the fire every night",
    "the train rolls by the old grain mill",
    "mama sings a hymn on sunday morning",
    "the truck broke down on the road to town",
    "i found my way home by the porch light",
    "the wind blows cold across the cotton field",
    "the song on the radio takes me home",
    "we sat on the tailgate and watched the stars",
    "the road goes on but my heart stays home",
)

PRESETS: dict[str, tuple[str, ...]] = {
    "Cats and dogs (the notebook)": CATS_AND_DOGS,
    "Country-style lines (original)": COUNTRY_STYLE,
}

# Limits for user text: big enough for a class exercise, small enough to train in seconds.
MAX_CHARS = 50_000
MAX_LINES = 2_000
MAX_VOCAB = 5_000
MAX_UPLOAD_BYTES = 200_000


class CorpusError(ValueError):
    """The text cannot be used as a corpus; the message says why, in plain words."""


@dataclass(frozen=True)
class Corpus:
    name: str
    lines: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())  # what was cleaned up, for the page to show

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def words(self) -> list[str]:
        return self.text.split()


def preset(name: str) -> Corpus:
    return Corpus(name, PRESETS[name])


def _clean(text: str) -> tuple[str, int]:
    """Drop control characters (NUL, escape codes...) but keep tabs and line breaks."""
    kept, dropped = [], 0
    for ch in text:
        if ch in "\n\t" or unicodedata.category(ch) != "Cc":
            kept.append(ch)
        elif ch == "\r":
            kept.append("\n")
        else:
            dropped += 1
    return "".join(kept), dropped


def load_corpus(
    text: str,
    name: str = "your text",
    *,
    max_chars: int = MAX_CHARS,
    max_lines: int = MAX_LINES,
    max_vocab: int = MAX_VOCAB,
) -> Corpus:
    """A corpus from pasted text: one sentence per line, blank lines ignored.

    Raises `CorpusError` for empty text, text over the limits, or text with fewer than two
    words (a model needs at least one (context -> next word) example).
    """
    if len(text) > max_chars:
        raise CorpusError(
            f"That text has {len(text):,} characters; the limit is {max_chars:,}. "
            "Use a shorter piece: a few hundred lines train in seconds."
        )
    text, dropped = _clean(text)
    lines = tuple(" ".join(line.split()) for line in text.split("\n"))
    lines = tuple(line for line in lines if line)
    if not lines:
        raise CorpusError("The text is empty. Paste or upload a few sentences, one per line.")
    if len(lines) > max_lines:
        raise CorpusError(f"That text has {len(lines):,} lines; the limit is {max_lines:,}.")
    words = " ".join(lines).split()
    if len(words) < 2:
        raise CorpusError(
            "A model learns to predict the next word, so it needs at least two words. "
            "Add a sentence or two."
        )
    vocab = len(set(words))
    if vocab > max_vocab:
        raise CorpusError(
            f"That text uses {vocab:,} different words; the limit is {max_vocab:,}. "
            "A tiny model learns best from a small vocabulary."
        )
    notes = (f"Removed {dropped} invisible control character(s).",) if dropped else ()
    return Corpus(name, lines, notes)


def load_upload(data: bytes, name: str = "uploaded file", **limits) -> Corpus:
    """A corpus from an uploaded file's bytes: UTF-8 text only, size-capped."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise CorpusError(
            f"That file is {len(data) / 1e6:.1f} MB; the limit is {MAX_UPLOAD_BYTES // 1000} kB of text."
        )
    if b"\x00" in data:
        raise CorpusError("That file is not plain text (it looks like a binary file).")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CorpusError("That file is not UTF-8 text. Save it as plain text (.txt, UTF-8).") from None
    return load_corpus(text, name, **limits)
