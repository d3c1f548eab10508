"""Exact answers for the BPE trainer (minillm/bpe.py).

The reference for every check is the slow, obvious algorithm: naive_train_bpe recounts all
pairs after every merge, and apply_merges encodes by applying the merges one by one.
"""

from __future__ import annotations

import inspect
import pickle
import random

import pytest
import regex

from minillm.bpe import (
    CL100K_PATTERN,
    Merge,
    apply_merges,
    get_stats,
    merge,
    naive_train_bpe,
    split_chunks,
    train_bpe,
)

# ----------------------------------------------------------------------------------------------
# A hand-worked example (the one on Wikipedia's "Byte pair encoding" page and in minbpe).
#
# "aaabdaaabac" is 11 bytes: a=97 b=98 c=99 d=100. The GPT-4 pre-split keeps it one chunk.
#   pairs: (a,a) 4, (a,b) 2, (b,d) 1, (d,a) 1, (b,a) 1, (a,c) 1
#   1: (97, 97) count 4 -> 256 "aa"          [256 97 98 100 256 97 98 97 99]        9 tokens
#      now (256,97) and (97,98) both occur twice: the lower left id wins
#   2: (97, 98) count 2 -> 257 "ab"          [256 257 100 256 257 97 99]            7 tokens
#   3: (256, 257) count 2 -> 258 "aaab"      [258 100 258 97 99]                    5 tokens
#      now four pairs occur once: (258,100) (100,258) (258,97) (97,99); lowest left id: 97
#   4: (97, 99) count 1 -> 259 "ac"          [258 100 258 259]                      4 tokens
#   5: (100, 258) count 1 -> 260 "daaab"     [258 260 259]                          3 tokens
#   6: (258, 260) count 1 -> 261 "aaabdaaab" [261 259]                              2 tokens
#   7: (261, 259) count 1 -> 262 the whole   [262]                                  1 token
#   then no pair is left, so asking for 10 merges gives 7.
HAND_TEXT = "aaabdaaabac"
HAND_MERGES = [  # (rank, left, right, new bytes, count)
    (256, 97, 97, b"aa", 4),
    (257, 97, 98, b"ab", 2),
    (258, 256, 257, b"aaab", 2),
    (259, 97, 99, b"ac", 1),
    (260, 100, 258, b"daaab", 1),
    (261, 258, 260, b"aaabdaaab", 1),
    (262, 261, 259, b"aaabdaaabac", 1),
]
HAND_TOKEN_COUNTS = [11, 9, 7, 5, 4, 3, 2, 1]
HAND_ENCODINGS = {  # number of merges -> tokens of HAND_TEXT
    0: [97, 97, 97, 98, 100, 97, 97, 97, 98, 97, 99],
    1: [256, 97, 98, 100, 256, 97, 98, 97, 99],
    2: [256, 257, 100, 256, 257, 97, 99],
    3: [258, 100, 258, 97, 99],
    7: [262],
}

AWKWARD = [
    "",
    " ",
    "a",
    "👋🏽",  # waving hand + skin tone modifier: 8 bytes, 2 code points
    "日本語のテキスト",
    "e\u0301",  # e + combining acute accent
    "a\nb\r\n\n",
    " " * 40,
    "\t\ttab\tseparated\t",
    "Mixed: naïve café, 12345 cats!! 👋🏽 日本語 e\u0301  \n\t end",
    "<img src=x onerror=alert(1)>",
    "don't WON'T I'll they've",
    "\x00\x1b[31mcontrol\x7f",
]


def make_text(num_words: int = 900, seed: int = 1) -> str:
    """A few KB of varied text, built deterministically (no files, no network)."""
    rng = random.Random(seed)
    words = (
        "the cat sat on mat dog chased ball bird sang tree a and mouse ran under "
        "bookkeepers keep books for bookies booking bookers naïve café 日本語 テキスト "
        "don't I'll 2024 31415 👋🏽 e\u0301 ok!! (yes) <b>"
    ).split()
    syllables = "ka ri to ne sho ban dle pre ing er ous mo tion ly un sta ble qu ix".split()
    words += ["".join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(300)]
    weights = [1.0 / (rank + 1) for rank in range(len(words))]
    parts = []
    for i in range(num_words):
        parts.append(rng.choices(words, weights)[0])
        parts.append(rng.choice([" ", " ", " ", " ", ", ", ". ", "\n", "  ", "\t"]))
    return "".join(parts)


def merge_tuples(result):
    return [(m.rank, m.left, m.right, m.new_bytes, m.count) for m in result.merges]


# ----------------------------------------------------------------------------------------------
# The helpers


def test_get_stats_and_merge_worked_examples():
    assert get_stats([1, 2, 3, 1, 2]) == {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    assert get_stats([7, 7, 7]) == {(7, 7): 2}  # overlapping pairs both count
    assert merge([1, 2, 3, 1, 2], (1, 2), 4) == [4, 3, 4]
    assert merge([7, 7, 7], (7, 7), 8) == [8, 7]  # the leftmost pair goes first
    assert merge([7, 7, 7, 7], (7, 7), 8) == [8, 8]


def test_pattern_is_tiktokens_cl100k_pattern():
    from tiktoken_ext import openai_public

    assert CL100K_PATTERN in inspect.getsource(openai_public.cl100k_base)


def test_split_chunks():
    assert split_chunks("I'll pay 12345 cats!") == ["I", "'ll", " pay", " ", "123", "45", " cats", "!"]
    assert split_chunks("hello  world\n") == ["hello", " ", " world", "\n"]
    assert split_chunks("I'll pay", regex_split=False) == ["I'll pay"]
    assert split_chunks("") == [] and split_chunks("", regex_split=False) == []


# ----------------------------------------------------------------------------------------------
# The hand-worked example


@pytest.mark.parametrize("trainer", [train_bpe, naive_train_bpe])
@pytest.mark.parametrize("regex_split", [True, False])
def test_hand_worked_example(trainer, regex_split):
    result = trainer(HAND_TEXT, 10, regex_split=regex_split)
    assert merge_tuples(result) == HAND_MERGES
    assert [m.left_bytes + m.right_bytes for m in result.merges] == [m[3] for m in HAND_MERGES]
    assert result.token_counts == HAND_TOKEN_COUNTS
    assert result.vocab_size() == 263 and result.vocab_size(2) == 258
    assert result.num_words == 1


def test_hand_worked_example_step_by_step_encodings():
    result = train_bpe(HAND_TEXT, 10)
    for k, expected in HAND_ENCODINGS.items():
        enc = result.encoding(k)
        assert enc.encode(HAND_TEXT) == expected, k
        assert apply_merges(HAND_TEXT, result.merges[:k]) == expected, k
        assert enc.n_vocab == 256 + k
        assert enc.name == f"bpe-{k}"
    assert result.encoding(100).encode(HAND_TEXT) == [262]  # clamped to the 7 merges made
    assert result.encoding().decode_single_token_bytes(262) == b"aaabdaaabac"


# ----------------------------------------------------------------------------------------------
# The trained encoding


@pytest.fixture(scope="module")
def trained():
    return {split: train_bpe(make_text(), 300, regex_split=split) for split in (True, False)}


@pytest.mark.parametrize("regex_split", [True, False])
@pytest.mark.parametrize("text", AWKWARD, ids=repr)
def test_round_trip_awkward_strings(trained, regex_split, text):
    result = trained[regex_split]
    for k in (0, 1, 50, len(result.merges)):
        enc = result.encoding(k)
        ids = enc.encode(text)
        assert enc.decode(ids) == text
        assert enc.decode_bytes(ids) == text.encode("utf-8")
        # tiktoken's lowest-rank-first encoding equals applying the merges in order
        assert ids == apply_merges(text, result.merges[:k], regex_split)


@pytest.mark.parametrize("regex_split", [True, False])
def test_encoding_equals_merges_applied_in_order_on_the_training_text(trained, regex_split):
    result = trained[regex_split]
    text = make_text()
    for k in (0, 7, 100, len(result.merges)):
        ids = result.encoding(k).encode(text)
        assert ids == apply_merges(text, result.merges[:k], regex_split)
        assert len(ids) == result.token_counts[k]  # the count recorded while training


def test_zero_merges_is_pure_bytes(trained):
    enc = trained[True].encoding(0)
    assert enc.n_vocab == 256
    for text in AWKWARD:
        assert enc.encode(text) == list(text.encode("utf-8"))


def test_regex_split_keeps_merges_inside_chunks(trained):
    def glues_word_to_what_follows(piece: bytes) -> bool:  # "t ", "cat.", "at, "
        return regex.search(r"\p{L}[\s,.!]", piece.decode("utf-8", errors="ignore")) is not None

    # with the pre-split no piece glues a word to the space or punctuation after it
    assert not [m.new_bytes for m in trained[True].merges if glues_word_to_what_follows(m.new_bytes)]
    assert any(glues_word_to_what_follows(m.new_bytes) for m in trained[False].merges)


def test_encoding_cache_returns_the_same_object(trained):
    result = trained[True]
    assert result.encoding(5) is result.encoding(5)
    assert result.encoding() is result.encoding(len(result.merges))


def test_result_survives_pickling(trained):  # st.cache_data pickles what it stores
    result = trained[True]
    copy = pickle.loads(pickle.dumps(result))
    assert copy.merges == result.merges and copy.token_counts == result.token_counts
    assert copy.encoding(20).encode("the cat") == result.encoding(20).encode("the cat")


# ----------------------------------------------------------------------------------------------
# Fast trainer against the naive reference


@pytest.mark.parametrize("regex_split", [True, False])
def test_same_merges_as_naive(trained, regex_split):
    text = make_text()
    assert len(text.encode("utf-8")) > 4000
    naive = naive_train_bpe(text, 300, regex_split=regex_split)
    fast = trained[regex_split]
    assert len(fast.merges) == 300
    assert fast.merges == naive.merges
    assert fast.token_counts == naive.token_counts
    assert (fast.num_chunks, fast.num_unique_chunks) == (naive.num_chunks, naive.num_unique_chunks)


@pytest.mark.parametrize("seed", range(40))
def test_same_merges_as_naive_on_small_random_texts(seed):
    rng = random.Random(seed)
    alphabet = rng.choice(["ab", "aab ", "ab c\n", "a😀 b", "xyz. xy"])
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
    for regex_split in (True, False):
        fast = train_bpe(text, 30, regex_split=regex_split)
        naive = naive_train_bpe(text, 30, regex_split=regex_split)
        assert fast.merges == naive.merges
        assert fast.token_counts == naive.token_counts
        assert fast.encoding().encode(text) == apply_merges(text, fast.merges, regex_split)


# ----------------------------------------------------------------------------------------------
# Progress, limits, edge cases


def test_progress_is_called_after_every_merge():
    calls = []
    train_bpe(make_text(200), 25, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(k, 25) for k in range(1, 26)]


def test_progress_reaches_the_end_when_training_stops_early():
    calls = []
    result = train_bpe(HAND_TEXT, 10, progress=lambda done, total: calls.append((done, total)))
    assert len(result.merges) == 7
    assert calls == [(k, 10) for k in range(1, 8)] + [(10, 10)]


def test_empty_and_tiny_texts():
    for text in ("", "a", " "):
        result = train_bpe(text, 5)
        assert result.merges == [] and result.token_counts == [len(text)]
        assert result.encoding().encode(text) == list(text.encode())


def test_negative_merges_are_refused():
    with pytest.raises(ValueError):
        train_bpe("abc", -1)
    with pytest.raises(ValueError):
        naive_train_bpe("abc", -1)
    with pytest.raises(ValueError):
        train_bpe("abc", 1).encoding(-1)


def test_merge_record():
    m = train_bpe("hello hello", 1).merges[0]
    assert isinstance(m, Merge)
    assert m.new_id == m.rank == 256
    assert m.new_bytes == m.left_bytes + m.right_bytes
