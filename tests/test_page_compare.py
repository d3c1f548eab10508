"""AppTest of the Compare tokenizers page: presets, typed text, limits, shared pieces."""

import json
import re

import pytest

from conftest import app_test, run_app
from minillm import compare
from minillm.bpe import train_bpe
from minillm.corpus import PRESETS
from minillm.tokenizers import FETCH_COMMAND, TiktokenTokenizer, is_available, load_encoding

PAGE = "pages/compare.py"
FIRST_CORPUS = next(iter(PRESETS))
TYPED = {
    "emoji": "Our llama 🦙 waves 👋🏽 at the 🇫🇷 flag",
    "cjk": "東京で寿司を食べました。 我爱北京天安门",
    "html": "<img src=x onerror=alert(1)> <script>alert('x')</script> **bold** [a](javascript:x)",
    "whitespace": "tabs\tand\n\nnew lines   and spaces \x00 and a NUL",
}


def expected_counts(text, n_words=compare.DEFAULT_WORD_LIST_SIZE, corpus=FIRST_CORPUS):
    """Token counts straight from the engine, for every row the page should show."""
    bpe = TiktokenTokenizer(train_bpe("\n".join(PRESETS[corpus]), 500).encoding())
    return {
        "characters": len(text),
        "bytes": len(text.encode("utf-8")),
        f"words (top {n_words:,})": len(compare.word_list_tokenizer(n_words).encode_known(text).ids),
        "small BPE": len(bpe.encode_known(text).ids),
        "cl100k_base": len(load_encoding("cl100k_base").encode(text, disallowed_special=())),
    }


def shown_counts(at):
    table = at.table[0].value
    return dict(zip(table["Tokenizer"], table["Tokens"]))


def token_lines(at):
    """The '**N tokens** · ...' line of every tokenizer block, in order."""
    return [m.value for m in at.markdown if " tokens** · **" in m.value]


def chips_html(at):
    return [h.body for h in at.html if "mll-chips" in h.body]


def check(at, text, **kw):
    """The page shows the engine's counts, in the table and in each block."""
    assert not at.exception
    expected = expected_counts(text, **kw)
    assert shown_counts(at) == expected
    assert [int(line.split(" tokens")[0].strip("*").replace(",", "")) for line in token_lines(at)] \
        == list(expected.values())
    assert len(chips_html(at)) == len(expected)


@pytest.fixture
def at():
    at = app_test(PAGE).run()
    assert not at.exception
    return at


def test_opens_with_its_question_the_notebook_sentence_and_the_figure(at):
    assert at.title[0].value == "Compare tokenizers"
    assert at.header[0].value == "How do different tokenizers cut the same sentence into pieces?"
    assert at.text_area(key="cmp_text").value == compare.PRESET_TEXTS["BPE encoder (the notebook)"]
    check(at, at.text_area(key="cmp_text").value)
    assert shown_counts(at)["cl100k_base"] == 12  # the notebook's 12 ids
    assert any("**32,192** different cl100k_base pieces" in m.value for m in at.markdown)
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert spec["layer"][0]["encoding"]["y"]["scale"]["type"] == "log"


def test_missing_encodings_get_a_plain_notice(at):
    missing = [name for name in ("gpt2", "o200k_base") if not is_available(name)]
    notices = " ".join(i.value for i in at.info)
    for name in missing:
        assert name in notices
    if missing:
        assert FETCH_COMMAND in notices
    for name in {"gpt2", "o200k_base"} - set(missing):
        assert name in shown_counts(at)


def test_each_preset_fills_the_text_and_every_tokenizer_counts_it(at):
    for preset, text in compare.PRESET_TEXTS.items():
        at.pills(key="cmp_preset").set_value(preset).run()
        assert at.text_area(key="cmp_text").value == text, preset
        check(at, text)
    at.pills(key="cmp_preset").set_value("…with “!”").run()
    assert shown_counts(at)["cl100k_base"] == 13  # the "!" is one more token


def test_typed_text_of_any_kind(at):
    for kind, text in TYPED.items():
        at.text_area(key="cmp_text").input(text).run()
        check(at, text)
        assert at.pills(key="cmp_preset").value is None, kind  # typing unselects the preset
        for body in chips_html(at):
            assert "<img" not in body and "<script" not in body, kind
    at.text_area(key="cmp_text").input(TYPED["html"]).run()
    bodies = "".join(chips_html(at))
    assert "&lt;img" in bodies and "&gt;alert" in bodies  # shown as text
    assert any("<" in label for label in at.selectbox(key="cmp_piece").options)


def test_emoji_pieces_show_their_bytes(at):
    at.text_area(key="cmp_text").input("🦙").run()
    assert not at.exception
    cl100k_chips = chips_html(at)[-1]
    assert "⟨F0 9F⟩" in cl100k_chips and "2 of 4 bytes of &#x27;🦙&#x27;" in cl100k_chips


def test_text_over_the_limit_is_cut_with_a_message_and_empty_text_asks_for_some(at):
    text = "the cat sat on the mat. " * 1_000  # 24,000 characters
    at.text_area(key="cmp_text").input(text).run()
    assert not at.exception
    assert any("24,000 characters; only the first 20,000" in w.value for w in at.warning)
    check(at, text[:20_000])
    assert all("more tokens" in body for body in chips_html(at)[:2])  # 20,000 chips capped
    at.text_area(key="cmp_text").input("").run()
    assert not at.exception
    assert any("Type or paste some text" in i.value for i in at.info)
    assert not at.table


def test_word_list_size_and_corpus_change_the_rows(at):
    at.pills(key="cmp_preset").set_value("bookkeepers (the notebook)").run()
    at.selectbox(key="cmp_words").set_value(1_000).run()
    at.selectbox(key="cmp_corpus").set_value("Country-style lines (original)").run()
    check(at, compare.PRESET_TEXTS["bookkeepers (the notebook)"], n_words=1_000,
          corpus="Country-style lines (original)")
    assert at.text[0].value == "bookkeepers, bookies, booking, bookers"  # the [UNK] words


def test_pick_a_piece_and_see_the_words_that_share_it(at):
    at.pills(key="cmp_preset").set_value("bookkeepers (the notebook)").run()
    piece = at.selectbox(key="cmp_piece")
    assert "␣book   (id 2363, in 32 words)" in piece.options
    assert piece.value == 2363  # suggested first: the most shared stem of the sentence
    piece.set_value(2239).run()  # "book" with no space: in 30 words, never at their start
    assert any("Found in **30 words** of the top" in m.value for m in at.markdown)
    piece = at.selectbox(key="cmp_piece")
    piece.set_value(2363).run()  # " book"
    assert not at.exception
    assert any("Found in **32 words** of the top 100,000" in m.value for m in at.markdown)
    words_html = [h.body for h in at.html if "white-space:nowrap" in h.body][0]
    assert words_html.count("white-space:nowrap") == 32  # every word, each split in pieces
    assert "keeping" in words_html and "mobile" in words_html
    at.selectbox(key="cmp_words").set_value(1_000).run()
    assert not at.exception
    assert at.selectbox(key="cmp_piece").value == 2363
    assert any("Found in **1 word** of the top 1,000" in m.value for m in at.markdown)


def captions(at):
    return [c.value for c in at.caption]


def test_emoji_and_cjk_pieces_are_explained_and_written_one_way(at):
    """Hex chips get the legend's line; the piece picker writes bytes as ⟨F0 9F⟩, never with
    the page's space symbol between them; a word found only as bytes is written whole."""
    at.text_area(key="cmp_text").input(TYPED["emoji"]).run()
    assert not at.exception
    legend = next(c for c in captions(at) if c.startswith("␣ a space"))
    assert "⟨F0 9F⟩ bytes of a character that was cut between tokens" in legend.replace("\\", "")
    hex_lines = [c for c in captions(at) if c.replace("\\", "").startswith("⟨F0 9F⟩ bytes")]
    with_hex = [body for body in chips_html(at) if re.search(r"class=\"[^\"]*mll-partial", body)]
    assert len(with_hex) == 3  # bytes, the small BPE and cl100k_base cut the emoji
    assert len(hex_lines) == len(with_hex)  # the legend's line beside each of them
    assert [c for c in captions(at) if c.startswith("⟨")] == hex_lines
    labels = at.selectbox(key="cmp_piece").options
    hex_labels = [label for label in labels if "⟨" in label]
    assert hex_labels and not [label for label in hex_labels if "·" in label or "␣9F" in label]
    assert "␣llama   (id 94776, in 1 word)" in labels  # one word, not "1 words"
    partial = next(label for label in labels if label.startswith("␣⟨F0 9F"))
    at.selectbox(key="cmp_piece").set_value(int(partial.split("(id ")[1].split(",")[0])).run()
    assert not at.exception
    words_html = [h.body for h in at.html if "white-space:nowrap" in h.body][0]
    assert 'class="mll-word"' in words_html  # each emoji word written whole before its hex


def test_the_legend_leaves_out_what_is_not_on_screen(at):
    at.text_area(key="cmp_text").input("plain words only").run()
    legend = next(c for c in captions(at) if c.startswith("␣ a space"))
    assert "⟨F0 9F⟩" not in legend and "new line" not in legend


def test_the_word_vocabulary_says_what_its_ids_are_and_its_rule(at):
    """100,032 ids under 'top 100,000': the page says they are 100,000 words, 31 punctuation
    marks and [UNK]; and says both word rules (this one lowercases, the models' does not)."""
    table = at.table[0].value.set_index("Tokenizer")
    size = table.loc["words (top 100,000)", "Vocabulary size"]
    assert size == 100_032
    about = next(c for c in captions(at) if "wordfreq plus punctuation" in c)
    assert f"{size:,} ids: the top 100,000 words, 31 punctuation marks" in about
    assert "lowercased" in about and "line.split()" in about and "“cat,”" in about
    at.text_area(key="cmp_text").input("I paid 42 pounds").run()
    assert any(c.startswith("Numbers among them") for c in captions(at))


def test_a_bpe_trained_on_build_a_bpe_replaces_the_small_one():
    at = app_test(PAGE)
    result = train_bpe("\n".join(PRESETS[FIRST_CORPUS]), 30)
    at.session_state["trained_bpe"] = {"result": result, "merges": 12, "name": "cats, 12 merges"}
    at.run()
    assert not at.exception
    counts = shown_counts(at)
    text = compare.PRESET_TEXTS[next(iter(compare.PRESET_TEXTS))]
    assert counts["your BPE: cats, 12 merges"] == len(result.encoding(12).encode(text))
    assert "small BPE" not in counts and not [s for s in at.selectbox if s.key == "cmp_corpus"]



def test_the_page_runs_inside_the_app():
    at = run_app(PAGE)
    assert not at.exception
    assert at.title[0].value == "Compare tokenizers"


def test_the_word_rule_is_said_on_generate_too():
    """Generate's word model keeps case and punctuation (the notebook's line.split(), kept so
    the notebook's numbers stay): the page says the rule, and an unknown "THE" or "cat," is
    said to be a known word in another form, not just "never seen"."""
    from conftest import page_with, trained_experiment

    from ui.plain_text import plain

    at = page_with("pages/generate.py", trained_experiment(epochs=20))
    assert any("line.split()" in c.value and "lowercases" in c.value for c in at.caption)
    at.text_input(key="generate_prompt").set_value("THE CAT, sat").run()
    assert not at.exception
    warning = "\n".join(w.value for w in at.warning)
    assert plain("'THE' is not 'the' and 'CAT,' is not 'cat'") in warning
    assert plain("capitals and punctuation stay part of a word") in warning


def test_generate_explains_the_symbols_on_a_character_models_bars():
    """The candidate bars of a character model show a space as ␣: the shared legend says so
    (a word model's bars have no such symbols, and no legend)."""
    from conftest import page_with, trained_experiment

    at = page_with("pages/generate.py", trained_experiment(epochs=5, tokenizer="character"))
    assert any(c.value.startswith("␣ a space") for c in at.caption)
    words = page_with("pages/generate.py", trained_experiment(epochs=5))
    assert not any(c.value.startswith("␣ a space") for c in words.caption)
