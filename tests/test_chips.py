"""The token-chip widget's HTML (ui/chips.py): escaping, colours, visible whitespace, bytes."""

import html
from html.parser import HTMLParser

import pytest

from minillm.compare import CodePointTokenizer, WordListTokenizer
from minillm.tokenizers import TiktokenTokenizer, TokenPiece, load_encoding, token_pieces
from ui.chips import (
    MAX_CHIPS, PALETTE, chip_colour, token_chips_html, visible_text, word_splits_html,
)


class Chips(HTMLParser):
    """Collect every chip: its classes, background, title, visible text and id."""

    def __init__(self):
        super().__init__()
        self.chips, self.tags, self.breaks, self._chip, self._in_id = [], [], 0, None, False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if "mll-chip" in classes:
            self._chip = {"classes": classes, "style": attrs.get("style"),
                          "title": attrs.get("title"), "text": "", "id": ""}
        elif "mll-id" in classes:
            self._in_id = True
        elif "mll-break" in classes:
            self.breaks += 1

    def handle_endtag(self, tag):
        if self._in_id:
            self._in_id = False
            self.chips.append(self._chip)
            self._chip = None

    def handle_data(self, data):
        if self._chip is not None:
            self._chip["id" if self._in_id else "text"] += data


def parse(markup: str) -> Chips:
    parser = Chips()
    parser.feed(markup)
    return parser


@pytest.fixture(scope="module")
def cl100k():
    return TiktokenTokenizer(load_encoding("cl100k_base"))


def chips_for(tokenizer, text):
    ids = tokenizer.encode_known(text).ids
    unknown_id = getattr(tokenizer, "unknown_id", None)
    return parse(token_chips_html(token_pieces(tokenizer, ids), unknown_id=unknown_id))


@pytest.mark.parametrize("text", [
    "<img src=x onerror=alert(1)>",
    '"><script>alert("x")</script>',
    "<b onmouseover='alert(1)'>hi</b>",
])
@pytest.mark.parametrize("make", [
    CodePointTokenizer, lambda: TiktokenTokenizer(load_encoding("cl100k_base"))])
def test_user_text_is_escaped_never_rendered(text, make):
    markup = token_chips_html(token_pieces(make(), make().encode_known(text).ids))
    assert "<img" not in markup and "<script" not in markup and "<b " not in markup
    parsed = parse(markup)
    assert set(parsed.tags) <= {"style", "div", "span"}  # no element came from the text
    assert "".join(chip["text"] for chip in parsed.chips) == visible_text(text)


def test_a_quote_cannot_break_out_of_the_title_attribute(cl100k):
    markup = token_chips_html(token_pieces(cl100k, cl100k.encode('a" onmouseover="alert(1)')))
    assert 'onmouseover="' not in markup
    titles = [chip["title"] for chip in parse(markup).chips]
    assert any('"' in title for title in titles)  # the quote survives as text, inside the title


def test_a_repeated_id_keeps_its_colour(cl100k):
    chips = chips_for(cl100k, "bookkeepers keep the books for bookies who do the booking for bookers").chips
    by_id = {}
    for chip in chips:
        by_id.setdefault(chip["id"], set()).add(chip["style"])
    assert [chip["id"] for chip in chips].count("369") == 2  # " for"
    assert all(len(styles) == 1 for styles in by_id.values())
    assert by_id["369"] == {f"background:{chip_colour(369)}"}
    assert len({style for styles in by_id.values() for style in styles}) > 3  # not all one colour


def test_colours_come_from_the_palette_and_never_change():
    assert {chip_colour(i) for i in range(1000)} == set(PALETTE)
    assert chip_colour(2363) == chip_colour(2363) == PALETTE[(2363 * 2654435761 % 2**32) % 12]


def test_whitespace_and_newlines_are_visible():
    parsed = chips_for(CodePointTokenizer(), "a b\n\tc")
    assert [chip["text"] for chip in parsed.chips] == ["a", "·", "b", "↵", "→", "c"]
    assert [chip["id"] for chip in parsed.chips] == ["97", "32", "98", "10", "9", "99"]
    assert parsed.breaks == 1  # a real line break after the newline chip


def test_control_characters_are_shown_as_symbols():
    assert visible_text("a\x00b\x1b\r\x7f") == "a␀b␛␍␡"


def test_part_of_an_emoji_shows_its_bytes_and_says_so(cl100k):
    chips = chips_for(cl100k, "🦙").chips
    assert [chip["text"] for chip in chips] == ["⟨F0 9F⟩", "⟨A6⟩", "⟨99⟩"]
    assert all("mll-partial" in chip["classes"] for chip in chips)
    assert "2 of 4 bytes of '🦙'" in chips[0]["title"]
    assert "bytes F0 9F" in chips[0]["title"]
    assert "\ufffd" not in "".join(chip["text"] + chip["title"] for chip in chips)


def test_only_pieces_of_a_character_are_marked_and_spaces_stay_visible(cl100k):
    chips = chips_for(cl100k, "hello 東京").chips
    assert [(chip["text"], "mll-partial" in chip["classes"]) for chip in chips] == [
        ("hello", False), ("·⟨E6 9D⟩", True), ("⟨B1⟩", True), ("京", False)]
    assert "2 of 3 bytes of '東'" in chips[1]["title"]


def test_unknown_words_are_marked():
    chips = chips_for(WordListTokenizer(["the", "cat"]), "the dog").chips
    assert [(chip["text"], "mll-unk" in chip["classes"]) for chip in chips] == [
        ("the", False), ("[UNK]", True)]


def test_long_texts_are_capped_with_a_note():
    pieces = [TokenPiece(i % 7, b"x", "x") for i in range(MAX_CHIPS + 500)]
    markup = token_chips_html(pieces, total=9_999)
    assert len(parse(markup).chips) == MAX_CHIPS
    assert "7,999 more tokens" in markup
    assert "(no tokens)" in token_chips_html([])


def test_word_splits_highlight_the_piece_and_escape(cl100k):
    words = [" bookkeeping", " <img src=x onerror=alert(1)>"]
    markup = word_splits_html([token_pieces(cl100k, cl100k.encode(w)) for w in words], highlight=2363)
    assert "<img" not in markup and "&lt;" in markup
    assert set(parse(markup).tags) <= {"div", "span", "b"}
    assert f'background:{chip_colour(2363)}' in markup
    assert html.unescape(markup).count("·book") == 1
