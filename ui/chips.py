"""Token chips: a text drawn as the tokens a tokenizer cut it into, one coloured chip each.

    render_token_chips(tokenizer, ids)      # in a page
    token_chips_html(pieces)                # the HTML alone (pure, unit-tested)

What a chip shows, and why:

- one chip per token, its colour picked by the token's *id* from Paul Tol's "light" palette
  (made for black text, and every pair of its colours stays apart for a reader with
  deuteranopia or protanopia: tests/test_chips.py checks it), so a token that comes back
  (" the", " for") has the same colour every time;
- colour is never the only cue: chips take turns with a single and a double border, so two
  neighbours differ even in grey, and each has its id in small print under it and a tooltip
  (the ``title`` attribute) with the id, the piece and its bytes;
- the text as `minillm.display.readable` shows every token on every page: a space is ``␣``,
  a tab ``→``, a newline ``↵`` (followed by a real line break), control characters their
  Unicode pictures (``␀``, ``␛``); `legend_lines` says so in words;
- a token that holds only part of a character (a byte-level BPE can split an emoji) shows
  its bytes in hex, ``⟨F0 9F⟩``, with a dashed border and the note "2 of 4 bytes of '🦙'".

Every piece of text goes through ``html.escape(..., quote=True)`` before it is put in the
HTML, so a text like ``<img src=x onerror=alert(1)>`` is shown, never rendered.
"""

from __future__ import annotations

import html
import numbers
from typing import Sequence

from minillm import display
from minillm.display import readable
from minillm.tokenizers import TokenPiece, Tokenizer, token_pieces

#: Paul Tol's "light" qualitative scheme (https://personal.sron.nl/~pault/), made to be filled
#: behind black text; near-black text keeps WCAG AA contrast (4.5:1) on every one of them.
PALETTE = (
    "#77AADD",  # light blue
    "#99DDFF",  # light cyan
    "#44BB99",  # mint
    "#BBCC33",  # pear
    "#AAAA00",  # olive
    "#EEDD88",  # light yellow
    "#EE8866",  # orange
    "#FFAABB",  # pink
    "#DDDDDD",  # pale grey
)
TEXT_COLOUR = "#111827"

#: At most this many chips are drawn; the rest are counted in a note (a 20,000-character text
#: is 20,000+ byte tokens, and the browser would crawl).
MAX_CHIPS = 2_000

_CSS = f"""<style>
.mll-chips {{ font-family: ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace;
  font-size: 1.45rem; line-height: 1.15; display: flex; flex-wrap: wrap; gap: 6px 4px;
  align-items: flex-start; }}
.mll-chip {{ display: inline-flex; flex-direction: column; align-items: center;
  padding: 3px 6px 2px; border-radius: 6px; color: {TEXT_COLOUR};
  border: 2px solid #4B5563; unicode-bidi: isolate; white-space: pre; }}
.mll-chip.mll-odd {{ border: 4px double #4B5563; padding: 1px 4px 0; }}
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
    for position, piece in enumerate(shown):
        classes = "mll-chip mll-odd" if position % 2 else "mll-chip"
        if piece.note:
            classes += " mll-partial"
        elif unknown_id is not None and piece.id == unknown_id:
            classes += " mll-unk"
        parts.append(
            f'<span class="{classes}" style="background:{chip_colour(piece.id)}" '
            f'title="{html.escape(_tooltip(piece), quote=True)}">'
            f"{html.escape(readable(piece.bytes), quote=True)}"
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


def legend_lines(pieces: Sequence[TokenPiece] | None = None) -> list[str]:
    """What the chips' symbols mean (`minillm.display.legend_lines`: all of them, or those the
    `pieces` show), then how chips are told apart.

    >>> legend_lines([TokenPiece(0, b"a b", "a b")])[0]
    '␣ a space'
    """
    shown = None if pieces is None else [readable(piece.bytes) for piece in pieces]
    return [*display.legend_lines(shown), CHIPS_NOTE]


def hex_legend_lines(pieces: Sequence[TokenPiece]) -> list[str]:
    """The legend's line for hex chips if `pieces` hold one (else none): said again beside
    the chips it explains.

    >>> hex_legend_lines([TokenPiece(0, b"a", "a")])
    []
    """
    return [line for line in legend_lines(pieces) if line.startswith(display.HEX_EXAMPLE)]


#: How chips are told apart without their colours.
CHIPS_NOTE = ("Each chip is one token, its id under it; neighbouring chips take turns with a "
              "single and a double border.")


def render_legend(lines: Sequence[str]) -> None:
    """Draw legend lines as one caption, a line each, shown exactly as written."""
    import streamlit as st

    from ui.plain_text import plain

    if lines:
        st.caption("  \n".join(plain(line) for line in lines))


def word_splits_html(splits: Sequence[Sequence[TokenPiece]], highlight: int) -> str:
    """Words as their pieces, ``␣book|keeping``, with the piece `highlight` in colour.

    `splits` is `minillm.compare.word_splits(...)`: per word, its token pieces. A word with a
    piece that holds only part of a character is also written whole first (``😂 ␣⟨F0 9F
    98⟩|⟨82⟩``): hex alone does not say which word it is.
    """
    words = []
    for pieces in splits:
        parts = []
        for piece in pieces:
            text = html.escape(readable(piece.bytes), quote=True)
            if piece.id == highlight:
                text = (
                    f'<b style="background:{chip_colour(piece.id)};color:{TEXT_COLOUR};'
                    f'border-radius:4px;padding:0 3px">{text}</b>'
                )
            parts.append(text)
        whole = b"".join(piece.bytes for piece in pieces).decode("utf-8", errors="replace").strip()
        word = (f'<span class="mll-word">{html.escape(whole, quote=True)}</span> '
                if any(piece.note for piece in pieces) else "")
        words.append('<span style="white-space:nowrap">' + word + _SEPARATOR.join(parts) + "</span>")
    return (
        '<div style="font-family:ui-monospace,\'DejaVu Sans Mono\',monospace;font-size:1.3rem;'
        'line-height:1.9;display:flex;flex-wrap:wrap;gap:4px 22px">' + "".join(words) + "</div>"
    )


_SEPARATOR = '<span style="color:#6B7280">|</span>'


_TABLE_CSS = """<style>
.mll-table { border-collapse: collapse; width: 100%; font-size: 1rem; }
.mll-table th { text-align: left; font-weight: 600; border-bottom: 2px solid #9CA3AF;
  padding: 4px 8px; position: sticky; top: 0; background: #FFFFFF; }
.mll-table td { border-bottom: 1px solid #E5E7EB; padding: 4px 8px; vertical-align: top; }
.mll-table td.mll-piece { font-family: ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace;
  white-space: pre-wrap; overflow-wrap: anywhere; word-break: break-all; }
.mll-table td.mll-number { text-align: right; white-space: nowrap; }
</style>"""


def pieces_table_html(table, pieces: Sequence[str] = ()) -> str:
    """A small table (a pandas DataFrame) as HTML whose `pieces` columns are shown whole and
    wrapped: a data grid cuts a long cell ("Picture-per…"), and a BPE trained without the
    pre-split makes pieces as long as a whole line. Every cell is escaped.

    >>> import pandas as pd
    >>> markup = pieces_table_html(pd.DataFrame({"piece": ["<b>"], "count": [1200]}), ["piece"])
    >>> "&lt;b&gt;" in markup and "1,200" in markup and "<b>" not in markup
    True
    """
    head = "".join(f"<th>{html.escape(str(column))}</th>" for column in table.columns)
    rows = []
    for values in table.itertuples(index=False):
        cells = []
        for column, value in zip(table.columns, values):
            if column in pieces:
                cells.append(f'<td class="mll-piece">{html.escape(str(value), quote=True)}</td>')
            elif isinstance(value, numbers.Integral):
                cells.append(f'<td class="mll-number">{int(value):,}</td>')
            else:
                cells.append(f"<td>{html.escape(str(value), quote=True)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'{_TABLE_CSS}<table class="mll-table"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')
