"""The Compare tokenizers engine (minillm/compare.py) and its chart, with exact answers."""

import json
import string

import pytest
import wordfreq

from minillm import compare
from minillm.bpe import train_bpe
from minillm.charts.compare import sharing_chart
from minillm.tokenizers import ByteTokenizer, TiktokenTokenizer, load_encoding

NOTEBOOK = "I am writing this to demonstrate how a BPE encoder works"
BOOKS = "bookkeepers keep the books for bookies who do the booking for bookers"

# Pinned from tiktoken itself: enc.encode(text) and enc.decode_single_token_bytes(id).
NOTEBOOK_IDS = [40, 1097, 4477, 420, 311, 20461, 1268, 264, 426, 1777, 24592, 4375]
BOOKS_PIECES = [
    (2239, b"book"), (56638, b"keepers"), (2567, b" keep"), (279, b" the"), (6603, b" books"),
    (369, b" for"), (2363, b" book"), (552, b"ies"), (889, b" who"), (656, b" do"),
    (279, b" the"), (22615, b" booking"), (369, b" for"), (2363, b" book"), (388, b"ers"),
]
# The top-100,000 English words whose cl100k encoding (after a space) holds " book" (2363).
BOOK_WORDS = (
    "book", "booker", "book's", "bookshop", "bookstores", "bookkeeping", "bookies", "bookshelf",
    "bookkeeper", "booklets", "bookcase", "bookshelves", "bookie", "bookmakers", "bookmaker",
    "bookworm", "bookish", "bookshops", "booklist", "bookcases", "bookends", "bookmaking",
    "bookbinding", "bookman", "bookable", "bookend", "booker's", "bookers", "bookbinder",
    "bookworms", "bookkeepers", "bookmobile",
)


@pytest.fixture(scope="module")
def cl100k():
    return load_encoding("cl100k_base")


def test_presets_are_the_notebooks_sentences():
    texts = list(compare.PRESET_TEXTS.values())
    assert texts[:3] == [NOTEBOOK, NOTEBOOK + "!", BOOKS]


def test_cl100k_rows_match_tiktoken(cl100k):
    row = compare.tokenize("cl100k_base", TiktokenTokenizer(cl100k), BOOKS)
    assert [(p.id, p.bytes) for p in row.pieces] == BOOKS_PIECES
    assert [(t, cl100k.decode_single_token_bytes(t)) for t in cl100k.encode(BOOKS)] == BOOKS_PIECES
    assert row.n_tokens == 15 and row.n_chars == 69
    assert row.chars_per_token == pytest.approx(69 / 15)
    assert list(compare.tokenize("c", TiktokenTokenizer(cl100k), NOTEBOOK).ids) == NOTEBOOK_IDS
    assert list(compare.tokenize("c", TiktokenTokenizer(cl100k), NOTEBOOK + "!").ids) == NOTEBOOK_IDS + [0]


def test_a_long_text_keeps_every_id_but_only_the_first_pieces():
    row = compare.tokenize("bytes", ByteTokenizer(), "é" * 3_000)
    assert row.n_tokens == 6_000 and row.n_chars == 3_000 and row.chars_per_token == 0.5
    assert len(row.pieces) == compare.MAX_PIECES
    assert row.pieces[0].note == "1 of 2 bytes of 'é'"


def test_empty_text_has_no_tokens():
    row = compare.tokenize("bytes", ByteTokenizer(), "")
    assert (row.n_tokens, row.chars_per_token, row.pieces) == (0, 0.0, ())


def test_check_text_cuts_at_the_limit_and_says_so():
    assert compare.check_text("x" * compare.MAX_TEXT_CHARS) == ("x" * 20_000, None)
    text, message = compare.check_text("x" * 25_000)
    assert text == "x" * 20_000
    assert message.startswith("Your text has 25,000 characters; only the first 20,000")


def test_word_list_tokenizer_lowercases_splits_punctuation_and_marks_unknowns():
    tok = compare.WordListTokenizer(["the", "cat", "don't", "."])
    encoded = tok.encode_known("The  cat don’t purr. Purr!")
    assert encoded.ids == [1, 2, 3, 0, 4, 0, 0]
    assert encoded.unknown == ["purr", "Purr", "!"]
    assert tok.decode(encoded.ids) == "the cat don't [UNK] . [UNK] [UNK]"
    assert tok.vocab_size == 5 and tok.unknown_id == 0


def test_word_list_of_the_top_words(cl100k):
    tok = compare.word_list_tokenizer(1_000)
    top = wordfreq.top_n_list("en", 1_000)
    assert tok.vocab_size == 1 + len(set(top) | set(string.punctuation)) == 1_033
    assert tok.vocab[1:4] == ["the", "to", "and"]
    row = compare.tokenize("words", tok, BOOKS)
    assert row.unknown == ("bookkeepers", "bookies", "booking", "bookers")
    assert [p.text for p in row.pieces][:4] == ["[UNK]", "keep", "the", "books"]
    assert compare.tokenize("words", tok, NOTEBOOK + "!").n_tokens == 12


@pytest.mark.parametrize("n, marks", [(1_000, 32), (100_000, 31)])
def test_the_word_vocabulary_says_what_its_ids_are(n, marks):
    """The top 100,000 list holds '_' already: 100,032 ids are 100,000 words, 31 marks, [UNK]."""
    tok = compare.word_list_tokenizer(n)
    parts = compare.word_vocabulary_parts(tok, n)
    assert tok.vocab_size == n + marks + 1
    assert parts.startswith(f"{tok.vocab_size:,} ids: the top {n:,} words, {marks} punctuation marks")
    assert ("'_', which wordfreq lists as a word" in parts) == (marks == 31)
    about = compare.word_list_about(tok, n)
    assert compare.WordListTokenizer.rule in about and "line.split()" in about


def test_code_point_tokenizer():
    tok = compare.CodePointTokenizer()
    assert tok.encode("A é🦙") == [65, 32, 233, 129433]
    assert tok.decode(tok.encode("東京 🦙\n")) == "東京 🦙\n"
    assert tok.piece_bytes(129433) == "🦙".encode()
    assert tok.vocab_size == 1_114_112


def test_bpe_fingerprint_names_the_vocabulary_not_the_object():
    text = "the cat sat on the mat\nthe dog sat on the rug"
    a, b = train_bpe(text, 10).encoding(), train_bpe(text, 10).encoding()
    assert a is not b and compare.bpe_fingerprint(a) == compare.bpe_fingerprint(b)
    assert compare.bpe_fingerprint(train_bpe(text, 9).encoding()) != compare.bpe_fingerprint(a)
    unsplit = train_bpe(text, 10, regex_split=False).encoding()
    assert compare.bpe_fingerprint(unsplit) != compare.bpe_fingerprint(a)


def test_summary_table(cl100k):
    rows = [compare.tokenize("bytes", ByteTokenizer(), BOOKS),
            compare.tokenize("cl100k_base", TiktokenTokenizer(cl100k), BOOKS),
            compare.tokenize("words", compare.WordListTokenizer(["the"]), "the cat")]
    table = compare.summary_table(rows)
    assert table.to_dict("list") == {
        "Tokenizer": ["bytes", "cl100k_base", "words"],
        "Vocabulary size": [256, 100_277, 2],
        "Tokens": [69, 15, 2],
        "Characters per token": [1.0, 4.6, 3.5],
        "Unknown words": [0, 0, 1],
    }


def test_ids_text():
    assert compare.ids_text([1, 2]) == "1, 2"
    assert compare.ids_text(list(range(2_500))).endswith("1999, … (500 more)")


def test_piece_index_hand_example(cl100k):
    index = compare.build_piece_index(cl100k, ["book", "bookkeeping", "booking", "cat"])
    assert index.n_words == 4
    assert index.words_with(2363) == ("book", "bookkeeping")  # " book"
    assert index.words_with(22615) == ("booking",)
    assert index.words_with(99999999) == ()


def test_which_top_words_share_book(cl100k):
    index = compare.word_piece_index(cl100k, 100_000)
    assert index.words_with(2363) == BOOK_WORDS
    summary = compare.sharing_summary(index)
    assert (summary.n_words, summary.n_pieces, summary.shared_pieces) == (100_000, 32_192, 15_151)


def test_sharing_distribution_of_the_top_1000_words(cl100k):
    index = compare.word_piece_index(cl100k, 1_000)
    table = compare.sharing_distribution(index)
    assert table.values.tolist() == [
        ["cl100k_base pieces", "1", 0, 974],
        ["cl100k_base pieces", "2", 1, 13],
        ["cl100k_base pieces", "3–4", 2, 4],
        ["cl100k_base pieces", "5–9", 3, 2],
        ["cl100k_base pieces", "10–99", 4, 2],
        ["word vocabulary (1,000 words)", "1", 0, 1_000],
    ]
    summary = compare.sharing_summary(index)
    assert (summary.n_pieces, summary.shared_pieces) == (995, 21)
    assert summary.mean_words_per_piece == pytest.approx(1_046 / 995)


def test_sharing_bins_by_hand():
    index = compare.PieceIndex(5, {1: ("a",), 2: ("a", "b"), 3: tuple("abcde"), 4: ("c",)})
    assert compare.sharing_distribution(index, "toy").values.tolist() == [
        ["toy pieces", "1", 0, 2], ["toy pieces", "2", 1, 1], ["toy pieces", "5–9", 3, 1],
        ["word vocabulary (5 words)", "1", 0, 5],
    ]
    words = [f"w{i}" for i in range(1_000)]
    assert compare.sharing_distribution(compare.PieceIndex(1_000, {7: tuple(words)})).values[0][1] == "1,000+"


def test_pieces_most_shared_and_word_splits(cl100k):
    ids = [2239, 56638, 2567, 2239, 2363]
    assert compare.pieces_in_order(ids) == [2239, 56638, 2567, 2363]
    index = compare.build_piece_index(cl100k, ["book", "bookkeeping", "keep"])
    assert compare.most_shared([2567, 2363], index) == 2363
    assert compare.most_shared([], index) is None
    splits = compare.word_splits(cl100k, ["bookkeeping", "🦙"])
    assert [p.text for p in splits[0]] == [" book", "keeping"]
    assert splits[1][0].note == "2 of 4 bytes of '🦙'"


def test_sharing_chart_is_grouped_log_bars(cl100k):
    table = compare.sharing_distribution(compare.word_piece_index(cl100k, 1_000))
    spec = json.loads(sharing_chart(table).to_json())
    bars, labels = spec["layer"]
    assert bars["mark"]["type"] == "bar" and labels["mark"]["type"] == "text"
    encoding = bars["encoding"]
    assert encoding["y"]["scale"]["type"] == "log" and encoding["y"]["stack"] is None
    assert encoding["y"]["scale"]["domainMin"] < 1  # a bar of 1 piece is visible
    assert encoding["xOffset"]["field"] == "vocabulary"
    assert encoding["x"]["sort"] == ["1", "2", "3–4", "5–9", "10–99"]
    assert labels["encoding"]["text"]["field"] == "pieces"
    values = next(iter(spec["datasets"].values()))
    assert sum(v["pieces"] for v in values if v["vocabulary"] == "cl100k_base pieces") == 995


def test_the_suggested_piece_is_a_shared_word_start(cl100k):
    index = compare.word_piece_index(cl100k, 100_000)
    tok = TiktokenTokenizer(cl100k)

    def suggested(text):
        piece_id = compare.suggested_piece(compare.tokenize("c", tok, text).pieces, index)
        return cl100k.decode_single_token_bytes(piece_id)

    assert suggested(BOOKS) == b" book"  # not "ers" (628 words) or " for": a stem
    assert suggested(NOTEBOOK) == b" this"  # 3 words, tied with " works": the first wins
    assert suggested("I am a") == b" a"  # no stem of 4+ letters: the most shared piece
    assert compare.suggested_piece([], index) is None
