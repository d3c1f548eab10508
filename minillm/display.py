"""One way to show a token, on every page and in every notebook.

A token is bytes. To show it, whitespace and control characters become one visible symbol
each, and bytes that hold only part of a character (a byte-level BPE cuts an emoji into
pieces) are written in hex between angle brackets:

    >>> readable(b" the\\n")
    '␣the↵'
    >>> readable("🦙".encode()[:2]), readable(b"\\xa6")
    ('⟨F0 9F⟩', '⟨A6⟩')

One symbol per character, everywhere: a space is ``␣`` (so the hex bytes inside ``⟨F0 9F⟩``
are separated by a real space, which can never be mistaken for a space of the text), a tab
``→``, a new line ``↵``, a carriage return ``␍``, other control characters their Unicode
pictures (``␀``, ``␛``), delete ``␡``. `legend_lines` says all that in words, and the pages
show it wherever such symbols are on screen.

Also here, because every page that shows tokens needs them: `count` ("1 token", "3 tokens")
and the colour checks behind the token chips' palette (`simulate`, `delta_e`: what a colour
looks like to someone with deuteranopia or protanopia, and how far apart two colours are).

No streamlit: a notebook shows tokens the same way.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

#: The symbol for a space.
SPACE = "␣"

#: Every character that is shown as another symbol, and its symbol.
SYMBOLS: dict[str, str] = {chr(code): chr(0x2400 + code) for code in range(0x20)}  # ␀ … ␟
SYMBOLS.update({" ": SPACE, "\t": "→", "\n": "↵", "\r": "␍", "\x7f": "␡"})

_ALL = str.maketrans(SYMBOLS)
_BUT_SPACES = str.maketrans({ch: sym for ch, sym in SYMBOLS.items() if ch != " "})
#: What ``bytes.decode(errors="surrogateescape")`` makes of bytes that are not a whole character.
_STRAY_BYTES = re.compile("[\udc80-\udcff]+")

#: How part of a character looks (two of the four bytes of 🦙).
HEX_EXAMPLE = "⟨F0 9F⟩"


def hex_bytes(data: bytes) -> str:
    """Bytes as hex between angle brackets, separated by plain spaces.

    >>> hex_bytes(b"\\xf0\\x9f")
    '⟨F0 9F⟩'
    """
    return "⟨" + " ".join(f"{b:02X}" for b in data) + "⟩"


def visible(text: str, *, spaces: bool = True) -> str:
    """`text` with whitespace and control characters as their symbols, on one line.

    With ``spaces=False`` spaces stay spaces (a sentence quoted in a message).

    >>> visible(" a\\tb\\n"), visible("a b\\x00", spaces=False)
    ('␣a→b↵', 'a b␀')
    """
    return text.translate(_ALL if spaces else _BUT_SPACES)


def readable(data: bytes) -> str:
    """A token's bytes as text a person can read: `visible`, and stray bytes as `hex_bytes`.

    >>> readable(b"a\\n\\t "), readable(" 東".encode()[:3])
    ('a↵→␣', '␣⟨E6 9D⟩')
    """
    text = visible(data.decode("utf-8", errors="surrogateescape"))
    return _STRAY_BYTES.sub(lambda run: hex_bytes(bytes(ord(c) - 0xDC00 for c in run.group())), text)


def joined(pieces: Iterable[bytes], separator: str = "|") -> str:
    """Several tokens as one string, each `readable`, between separators.

    >>> joined([b" book", b"keepers"]), joined([b" ", "😂".encode()[:3], b"\\x82"])
    ('␣book|keepers', '␣|⟨F0 9F 98⟩|⟨82⟩')
    """
    return separator.join(readable(piece) for piece in pieces)


#: The legend: (the symbol as shown, what it means). `legend_lines` picks from it.
LEGEND: tuple[tuple[str, str], ...] = (
    (SPACE, "a space"),
    ("↵", "a new line"),
    ("→", "a tab"),
    ("␍", "a carriage return"),
    (HEX_EXAMPLE, "bytes of a character that was cut between tokens, in hex "
                  "(an emoji or a Chinese character is 3 or 4 bytes; a byte-level BPE may cut it)"),
    ("␀ ␛ ␡", "other invisible control characters"),
)
_CONTROL_PICTURES = set(SYMBOLS.values()) - {SPACE, "→", "↵", "␍"}


def legend_lines(shown: Iterable[str] | None = None) -> list[str]:
    """The legend, one line per kind of symbol: all of them, or only those in `shown` (texts
    as `readable` or `visible` made them; the space's line always comes first).

    >>> legend_lines(["␣the", "⟨F0 9F⟩"])[1]
    '⟨F0 9F⟩ bytes of a character that was cut between tokens, in hex (an emoji or a Chinese character is 3 or 4 bytes; a byte-level BPE may cut it)'
    >>> len(legend_lines()), legend_lines(["cat"])
    (6, ['␣ a space'])
    """
    if shown is None:
        return [f"{symbol} {meaning}" for symbol, meaning in LEGEND]
    seen = set("".join(shown))
    lines = [f"{SPACE} a space"]
    for symbol, meaning in LEGEND[1:]:
        if symbol == HEX_EXAMPLE:
            present = "⟨" in seen
        elif symbol == "␀ ␛ ␡":
            present = bool(seen & _CONTROL_PICTURES)
        else:
            present = symbol in seen
        if present:
            lines.append(f"{symbol} {meaning}")
    return lines


def count(n: int, noun: str, plural: str | None = None) -> str:
    """A number and its noun, singular or plural, with thousands separators.

    >>> count(1, "token"), count(3, "token"), count(1_000, "word"), count(0, "body", "bodies")
    ('1 token', '3 tokens', '1,000 words', '0 bodies')
    """
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


# --------------------------------------------------------------------------------------------
# Colours as a colour-blind reader sees them

#: Machado, Oliveira & Fernandes (2009), "A physiologically-based model for simulation of
#: color vision deficiency", severity 1.0: linear RGB in, linear RGB out.
CVD_MATRICES: dict[str, tuple[tuple[float, float, float], ...]] = {
    "protanopia": ((0.152286, 1.052583, -0.204868),
                   (0.114503, 0.786281, 0.099216),
                   (-0.003882, -0.048116, 1.051998)),
    "deuteranopia": ((0.367322, 0.860646, -0.227968),
                     (0.280085, 0.672501, 0.047413),
                     (-0.011820, 0.042940, 0.968881)),
}


def _linear(channel: float) -> float:
    return channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4


def linear_rgb(colour: str) -> tuple[float, float, float]:
    """A ``#RRGGBB`` colour as linear-light RGB in [0, 1] (sRGB's transfer curve undone)."""
    return tuple(_linear(int(colour[i : i + 2], 16) / 255) for i in (1, 3, 5))  # type: ignore[return-value]


def simulate(colour: str, vision: str) -> tuple[float, float, float]:
    """The linear RGB a reader with `vision` ("protanopia", "deuteranopia" or "normal") sees.

    >>> [round(c, 3) for c in simulate("#FF0000", "protanopia")]
    [0.152, 0.115, 0.0]
    """
    rgb = linear_rgb(colour)
    if vision == "normal":
        return rgb
    rows = CVD_MATRICES[vision]
    return tuple(min(max(sum(m * c for m, c in zip(row, rgb)), 0.0), 1.0) for row in rows)  # type: ignore[return-value]


def lab(rgb: Sequence[float]) -> tuple[float, float, float]:
    """CIE L*a*b* (D65 white) of a linear RGB colour.

    >>> [abs(round(v, 3)) for v in lab((1.0, 1.0, 1.0))]
    [100.0, 0.0, 0.0]
    """
    r, g, b = rgb
    xyz = (0.4124564 * r + 0.3575761 * g + 0.1804375 * b,
           0.2126729 * r + 0.7151522 * g + 0.0721750 * b,
           0.0193339 * r + 0.1191920 * g + 0.9503041 * b)
    white = (0.95047, 1.0, 1.08883)

    def f(t: float) -> float:
        return math.copysign(abs(t) ** (1 / 3), t) if t > (6 / 29) ** 3 else t / (3 * (6 / 29) ** 2) + 4 / 29

    fx, fy, fz = (f(v / w) for v, w in zip(xyz, white))
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def delta_e(first: str, second: str, vision: str = "normal") -> float:
    """How different two ``#RRGGBB`` colours look to a reader with `vision`: the distance
    between their L*a*b* values (CIE76; about 2.3 is just noticeable, 10 is plain at a glance).

    >>> round(delta_e("#000000", "#FFFFFF"), 1), round(delta_e("#BFDBFE", "#E9D5FF", "protanopia"), 1)
    (100.0, 0.2)
    """
    return math.dist(lab(simulate(first, vision)), lab(simulate(second, vision)))
