"""minillm.display: one way to show a token, used by every page (issue 11)."""

import html
import re
from pathlib import Path

import pytest

from minillm import bpe, display, inspect, words
from minillm.data import build_dataset
from minillm.tokenizers import CharTokenizer, TiktokenTokenizer, load_encoding, token_pieces
from ui.chips import token_chips_html
from ui.plain_text import plain

ROOT = Path(__file__).resolve().parent.parent
AWKWARD = "a b\tc\nd\re\x00\x1b\x7f 🦙 東京"


def test_one_symbol_per_character():
    shown = display.visible(AWKWARD)
    assert len(shown) == len(AWKWARD)
    assert shown == "a␣b→c↵d␍e␀␛␡␣🦙␣東京"
    assert display.visible(AWKWARD, spaces=False).count(" ") == AWKWARD.count(" ")
    symbols = list(display.SYMBOLS.values())
    assert len(set(symbols)) == len(symbols) == 34  # the 32 C0 controls, space and delete
    assert display.SYMBOLS[" "] == display.SPACE == "␣"


def test_partial_bytes_are_hex_separated_by_plain_spaces():
    llama = "🦙".encode()
    assert display.readable(llama[:2]) == "⟨F0 9F⟩"
    assert display.readable(b" " + llama[:3]) == "␣⟨F0 9F A6⟩"
    assert display.readable(b"\xff") == "⟨FF⟩"  # not UTF-8 at all
    assert display.readable(llama) == "🦙"


@pytest.fixture(scope="module")
def cl100k():
    return TiktokenTokenizer(load_encoding("cl100k_base"))


def test_every_page_shows_a_token_the_same_way(cl100k):
    """The chips, Build a BPE's table, Words vs tokens' pieces, the attention and Generate
    labels: the same text for the same bytes."""
    ids = cl100k.encode(AWKWARD)
    pieces = token_pieces(cl100k, ids)
    expected = [display.readable(p.bytes) for p in pieces]
    chips = re.findall(r'title="[^"]*">([^<]*)<span class="mll-id">', token_chips_html(pieces))
    assert [html.unescape(c) for c in chips] == expected
    assert [bpe.readable_piece(p.bytes) for p in pieces] == expected
    assert words._pieces_text(cl100k.encoding, ids) == "|".join(expected)
    chars = CharTokenizer.fit([AWKWARD])
    dataset = build_dataset([AWKWARD], chars, 3)
    assert [inspect.display_label(dataset, i) for i in range(len(chars.vocab))] == [
        display.visible(c) for c in chars.vocab]
    assert plain("a\tb") == "a→b"  # a message keeps its spaces, but the same other symbols


def test_no_page_or_module_keeps_its_own_symbols():
    """Whitespace symbols and hex formatting live in minillm/display.py only."""
    own = re.compile(r"0x2400|02X\}|[\"']·[\"']|[\"']␣[\"']|[\"']↵[\"']")
    offenders = []
    for folder in ("minillm", "ui", "pages"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "display.py":
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if own.search(line) and not line.strip().startswith((">>>", "[", "(")):  # a doctest
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_legend_lines():
    assert display.legend_lines()[0] == "␣ a space"
    assert [line.split(" ")[0] for line in display.legend_lines(["a↵b", "␀"])] == ["␣", "↵", "␀"]
    assert any(line.startswith("⟨F0 9F⟩") for line in display.legend_lines(["x⟨82⟩"]))


def test_count_says_one_or_many():
    assert [display.count(n, "word") for n in (0, 1, 2, 1_000)] == [
        "0 words", "1 word", "2 words", "1,000 words"]
