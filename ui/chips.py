"""Token chips: a text drawn as the tokens a tokenizer cut it into, one coloured chip each.

    render_token_chips(tokenizer, ids)      # in a page
    token_chips_html(pieces)                # the HTML alone (pure, unit-tested)

What a chip shows, and why:

- one chip per token, its colour picked from a fixed palette by the token's *id*, so a token
  that comes back (" the", " for") has the same colour every time;
- whitespace made visible: a space is ``·``, a tab ``→``, a newline ``↵`` followed by a real
  line break; control characters show as their Unicode symbols (``␀``, ``␛``);
- the id in small print under the text, and a tooltip (the ``title`` attribute) with the id,
  the piece and its bytes;
- a token that holds only part of a character (a byte-level BPE can split an emoji) shows
  its bytes in hex, ``⟨F0 9F⟩``, with a dashed border and the note "2 of 4 bytes of '🦙'".

Every piece of text goes through ``html.escape(..., quote=True)`` before it is put in the
HTML, so a text like ``<img src=x onerror=alert(1)>`` is shown, never rendered.
"""

from __future__ import annotations

import html
import re
from typing import Sequence

from minillm.tokenizers import TokenPiece, Tokenizer, token_pieces

#: Light backgrounds that all keep near-black text above WCAG AA contrast (4.5:1).
PALETTE = (
    "#FDE68A",  # amber
    "#BBF7D0",  # green
    "#BFDBFE",  # blue
    "#FBCFE8",  # pink
    "#DDD6FE",  # violet
    "#FED7AA",  # orange
    "#A5F3FC",  # cyan
    "#D9F99D",  # lime
    "#FECACA",  # red
    "#C7D2FE",  # indigo
    "#E9D5FF",  # purple
    "#99F6E4",  # teal
)
TEXT_COLOUR = "#111827"

#: At most this many chips are drawn; the rest are counted in a note (a 20,000-character text
#: is 20,000+ byte tokens, and the browser would crawl).
MAX_CHIPS = 2_000

_VISIBLE = {" ": "·", "\t": "→", "\n": "↵", "\r": "␍", "\x7f": "␡"}

_CSS = f"""<style>
.mll-chips {{ font-family: ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace;
  font-size: 1.45rem; line-height: 1.15; display: flex; flex-wrap: wrap; gap: 6px 4px;
  align-items: flex-start; }}
.mll-chip {{ display: inline-flex; flex-direction: column; align-items: center;
  padding: 3px 6px 2px; border-radius: 6px; color: {TEXT_COLOUR};
  border: 2px solid rgba(0,0,0,0.18); unicode-bidi: isolate; white-space: pre; }}
.mll-chip.mll-partial {{ border: 2px dashed #B91C1C; }}
.mll-chip.mll-unk {{ border: 2px dashed #374151; font-style: italic; }}
.mll-id {{ font-size: 0.8rem; color: #374151; margin-top: 2px; }}
.mll-break {{ flex-basis: 100%; height: 0; }}
.mll-more {{ font-family: sans-serif; font-size: 1rem; color: #4B5563; align-self: center; }}
</style>"""


def chip_colour(token_id: int) -> str:
    """The palette colour of an id: the same id always gets the same colour.

    A multiplicative hash (Knuth's) spreads neighbouring ids over the palette.
    """
    return PALETTE[(token_id * 2654435761 % 2**32) % len(PALETTE)]


def visible_text(text: str) -> str:
    """A token's text with whitespace and control characters made visible (no line breaks).

    >>> visible_text(" a\\tb\\n")
    '·a→b↵'
    """
    out = []
    for ch in text:
        if ch in _VISIBLE:
            out.append(_VISIBLE[ch])
        elif ord(ch) < 0x20:
            out.append(chr(0x2400 + ord(ch)))  # the Unicode "control picture": ␀, ␛, ...
        else:
            out.append(ch)
    return "".join(out)


_HEX = re.compile(r"⟨[0-9A-F]{2}(?:·[0-9A-F]{2})*⟩")


def chip_text(piece: TokenPiece) -> str:
    """What a chip shows: `visible_text`, except the spaces between hex bytes stay spaces.

    >>> chip_text(TokenPiece(220, b" \\xe6\\x9d", " ⟨E6 9D⟩", "2 of 3 bytes of '東'"))
    '·⟨E6 9D⟩'
    """
    text = visible_text(piece.text)
    if piece.note:  # token_pieces wrote the bytes of a partial character as ⟨E6 9D⟩
        text = _HEX.sub(lambda match: match.group().replace("·", " "), text)
    return text


def _tooltip(piece: TokenPiece) -> str:
    if piece.note:
        return f"id {piece.id} · {piece.note} · bytes {piece.hex}"
    n = len(piece.bytes)
    return f"id {piece.id} · {piece.text!r} · {n} byte{'s' if n != 1 else ''}"


def token_chips_html(
    pieces: Sequence[TokenPiece],
    *,
    total: int | None = None,
    max_chips: int = MAX_CHIPS,
    unknown_id: int | None = None,
) -> str:
    """The HTML of a row of token chips (see the module docstring). Pure: no streamlit.

    `total` is the number of tokens in the whole text when `pieces` is only the first part;
    `unknown_id` (a tokenizer's ``unknown_id`` attribute, if it has one) marks its ``[UNK]``
    chips with a dashed border.
    """
    total = len(pieces) if total is None else total
    shown = pieces[:max_chips]
    parts = [_CSS, '<div class="mll-chips">']
    for piece in shown:
        classes = "mll-chip"
        if piece.note:
            classes += " mll-partial"
        elif unknown_id is not None and piece.id == unknown_id:
            classes += " mll-unk"
        parts.append(
            f'<span class="{classes}" style="background:{chip_colour(piece.id)}" '
            f'title="{html.escape(_tooltip(piece), quote=True)}">'
            f"{html.escape(chip_text(piece), quote=True)}"
            f'<span class="mll-id">{piece.id}</span></span>'
        )
        parts.extend('<span class="mll-break"></span>' for _ in range(piece.text.count("\n")))
    if total > len(shown):
        parts.append(
            f'<span class="mll-more">… and {total - len(shown):,} more tokens '
            f"(the first {len(shown):,} are drawn)</span>"
        )
    if not shown:
        parts.append('<span class="mll-more">(no tokens)</span>')
    parts.append("</div>")
    return "".join(parts)


def render_chips_html(chips_html: str, *, key: str | None = None) -> None:
    """Draw HTML made by `token_chips_html` (in a keyed container when `key` is given, so a
    browser test can find it as ``.st-key-<key>``)."""
    import streamlit as st

    if key is None:
        st.html(chips_html)
    else:
        with st.container(key=key):
            st.html(chips_html)


def render_token_chips(
    tokenizer: Tokenizer, ids: Sequence[int], *, key: str | None = None, max_chips: int = MAX_CHIPS
) -> None:
    """Draw `ids` as token chips (only the first `max_chips`, with a note about the rest)."""
    pieces = token_pieces(tokenizer, list(ids[:max_chips]))
    unknown_id = getattr(tokenizer, "unknown_id", None)  # a word-level tokenizer's [UNK]
    render_chips_html(
        token_chips_html(pieces, total=len(ids), max_chips=max_chips, unknown_id=unknown_id),
        key=key,
    )


def word_splits_html(splits: Sequence[Sequence[TokenPiece]], highlight: int) -> str:
    """Words as their pieces, ``·book|keeping``, with the piece `highlight` in colour.

    `splits` is `minillm.compare.word_splits(...)`: per word, its token pieces.
    """
    words = []
    for pieces in splits:
        parts = []
        for piece in pieces:
            text = html.escape(chip_text(piece), quote=True)
            if piece.id == highlight:
                text = (
                    f'<b style="background:{chip_colour(piece.id)};color:{TEXT_COLOUR};'
                    f'border-radius:4px;padding:0 3px">{text}</b>'
                )
            parts.append(text)
        words.append('<span style="white-space:nowrap">' + _SEPARATOR.join(parts) + "</span>")
    return (
        '<div style="font-family:ui-monospace,\'DejaVu Sans Mono\',monospace;font-size:1.3rem;'
        'line-height:1.9;display:flex;flex-wrap:wrap;gap:4px 22px">' + "".join(words) + "</div>"
    )


_SEPARATOR = '<span style="color:#9CA3AF">|</span>'
