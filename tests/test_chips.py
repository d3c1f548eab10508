"""The token-chip widget's HTML (ui/chips.py): escaping, colours, visible whitespace, bytes."""

import html
import itertools
import re
from html.parser import HTMLParser

import pytest

from minillm import display
from minillm.compare import CodePointTokenizer, WordListTokenizer
from minillm.tokenizers import TiktokenTokenizer, TokenPiece, load_encoding, token_pieces
from ui.chips import (
    CHIPS_NOTE, MAX_CHIPS, PALETTE, TEXT_COLOUR, chip_colour, legend_lines, token_chips_html,
    word_splits_html,
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
    assert "".join(chip["text"] for chip in parsed.chips) == display.visible(text)


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
    assert chip_colour(2363) == chip_colour(2363) == PALETTE[(2363 * 2654435761 % 2**32) % len(PALETTE)]


def test_whitespace_and_newlines_are_visible():
    parsed = chips_for(CodePointTokenizer(), "a b\n\tc")
    assert [chip["text"] for chip in parsed.chips] == ["a", "␣", "b", "↵", "→", "c"]
    assert [chip["id"] for chip in parsed.chips] == ["97", "32", "98", "10", "9", "99"]
    assert parsed.breaks == 1  # a real line break after the newline chip


def test_control_characters_are_shown_as_symbols():
    parsed = chips_for(CodePointTokenizer(), "a\x00b\x1b\r\x7f")
    assert "".join(chip["text"] for chip in parsed.chips) == "a␀b␛␍␡"


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
        ("hello", False), ("␣⟨E6 9D⟩", True), ("⟨B1⟩", True), ("京", False)]
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
    assert html.unescape(markup).count("␣book") == 1


def test_a_word_split_into_bytes_is_also_written_whole(cl100k):
    """Hex alone (⟨F0 9F 98⟩|⟨82⟩) does not say which word it is: the word comes first."""
    words = ["😂", "東京", "book"]
    markup = html.unescape(re.sub("<[^>]+>", "", word_splits_html(
        [token_pieces(cl100k, cl100k.encode(" " + w)) for w in words], highlight=-1)))
    assert "😂 ␣⟨F0 9F 98⟩" in markup and "東京 " in markup
    assert "book ␣book" not in markup  # a readable split needs no repeat


def test_hex_bytes_are_never_separated_by_the_space_symbol(cl100k):
    chips = chips_for(cl100k, "a 🦙 東").chips
    hex_chips = [chip["text"] for chip in chips if "⟨" in chip["text"]]
    assert hex_chips and all("·" not in t and "⟨F0␣" not in t for t in hex_chips)
    assert any(t.startswith("␣⟨") for t in hex_chips)  # the text's own space is ␣, outside


# --------------------------------------------------------------------------------------------
# Colour-blind readers: the palette is checked as a reader with deuteranopia or protanopia sees
# it (Machado et al. 2009), and colour is never the only cue.

VISIONS = ("normal", "deuteranopia", "protanopia")
#: CIE76 distance between any two chip colours, for every reader: about 2.3 is just noticeable;
#: 10 is plainly different side by side.
MIN_DELTA_E = 10.0


def closest_pair(palette):
    return min((display.delta_e(a, b, vision), a, b, vision)
               for a, b in itertools.combinations(palette, 2) for vision in VISIONS)


def test_any_two_chip_colours_stay_apart_under_deuteranopia_and_protanopia():
    """Chips' colours come from ids, so any two colours can stand side by side: every pair
    must stay distinguishable, for every reader."""
    worst = closest_pair(PALETTE)
    assert worst[0] >= MIN_DELTA_E, f"{worst[1]} and {worst[2]} look alike ({worst[0]:.1f}) with {worst[3]}"


def test_the_check_catches_a_palette_colour_blind_readers_cannot_tell_apart():
    """The palette before this one: blue #BFDBFE and purple #E9D5FF are 0.2 apart with
    protanopia; a red and a green of the same lightness collapse with deuteranopia."""
    old = ("#FDE68A", "#BBF7D0", "#BFDBFE", "#FBCFE8", "#DDD6FE", "#FED7AA",
           "#A5F3FC", "#D9F99D", "#FECACA", "#C7D2FE", "#E9D5FF", "#99F6E4")
    assert closest_pair(old)[0] < 1
    red, green = "#D55E00", "#6B8E00"
    assert display.delta_e(red, green) > 30 > display.delta_e(red, green, "deuteranopia")


def test_the_simulation_keeps_what_each_reader_still_sees():
    # Blue against yellow is the contrast both deuteranopes and protanopes keep.
    assert display.delta_e("#0072B2", "#F0E442", "deuteranopia") > 50
    assert display.delta_e("#0072B2", "#F0E442", "protanopia") > 50
    # Greys are the same for everyone (each matrix row sums to about 1).
    for vision in VISIONS:
        assert display.delta_e("#808080", "#808080", vision) == 0
        assert max(abs(c - g) for c, g in zip(display.simulate("#808080", vision),
                                              display.linear_rgb("#808080"))) < 0.001


def contrast(background, text=TEXT_COLOUR):
    def luminance(colour):
        r, g, b = display.linear_rgb(colour)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b
    return (luminance(background) + 0.05) / (luminance(text) + 0.05)


def test_chip_text_stays_readable_on_every_colour():
    assert min(contrast(colour) for colour in PALETTE) >= 4.5  # WCAG AA


def test_neighbouring_chips_differ_without_colour(cl100k):
    """Two neighbours can share a colour (colours come from ids): their borders alternate, and
    each carries its id."""
    chips = chips_for(cl100k, "the the cat sat on the mat").chips
    odd = ["mll-odd" in chip["classes"] for chip in chips]
    assert odd == [i % 2 == 1 for i in range(len(chips))]
    assert all(chip["id"].isdigit() for chip in chips)
    assert "double" in token_chips_html([])  # the odd chips' border is drawn


def test_legend_says_what_the_chips_show(cl100k):
    pieces = token_pieces(cl100k, cl100k.encode("a 🦙\n"))
    lines = legend_lines(pieces)
    assert lines[0].startswith("␣ ") and lines[-1] == CHIPS_NOTE
    assert any(line.startswith("⟨F0 9F⟩ ") for line in lines)
    assert any(line.startswith("↵ ") for line in lines)
    assert not any(line.startswith("→ ") for line in lines)  # no tab here
    assert not any(line.startswith("⟨") for line in legend_lines(token_pieces(cl100k, cl100k.encode("cat"))))
