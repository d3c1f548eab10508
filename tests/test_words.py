"""Engine tests for minillm.words: exact answers, each against an independent computation."""

import math
import sys

import pandas as pd
import pytest
import wordfreq

from minillm import words
from minillm.tokenizers import load_encoding

NOTEBOOK_SENTENCE = "I am writing this to demonstrate how a BPE encoder works"


@pytest.fixture(scope="module")
def enc():
    return load_encoding("cl100k_base")


@pytest.fixture(scope="module")
def top_100k_table(enc):
    return words.tokens_per_word(words.top_words(100_000), enc)


def test_notebook_sentence_ids(enc):
    assert enc.encode(NOTEBOOK_SENTENCE) == [40, 1097, 4477, 420, 311, 20461, 1268, 264, 426, 1777, 24592, 4375]


def test_top_words_is_wordfreqs_list():
    assert words.top_words(5) == ["the", "to", "and", "of", "a"]
    assert words.top_words(1000) == wordfreq.top_n_list("en", 1000)


def test_max_words_is_every_english_word_wordfreq_lists():
    assert words.MAX_WORDS == 319_938
    assert len(wordfreq.top_n_list("en", 10**7, wordlist="best")) == words.MAX_WORDS
    assert len(words.top_words(words.MAX_WORDS)) == words.MAX_WORDS


@pytest.mark.parametrize("n", [0, -1, words.MAX_WORDS + 1])
def test_top_words_rejects_impossible_n(n):
    with pytest.raises(ValueError, match="between 1 and"):
        words.top_words(n)


def test_top_words_returns_a_copy():
    first = words.top_words(3)
    first.append("zzz")
    assert words.top_words(3) == ["the", "to", "and"]


def notebook_measurements(n, enc):
    """The notebook's cells, run independently of the engine."""
    sentence = " ".join(wordfreq.top_n_list("en", n))
    string_size = sys.getsizeof(sentence)  # measured before encoding, as in the notebook
    tokens = enc.encode(sentence)
    return sentence, string_size, tokens


def test_size_comparison_for_100k_matches_the_notebook(enc):
    sentence, string_size, tokens = notebook_measurements(100_000, enc)
    s = words.size_comparison(100_000, enc)
    assert s.n_words == 100_000
    assert s.characters == len(sentence) == 813_313
    assert s.utf8_bytes == len(sentence.encode("utf-8")) == 814_743
    assert s.string_getsizeof == string_size == 3_253_328
    assert s.tokens == len(tokens) == 205_558
    assert s.tokens_getsizeof == sys.getsizeof(tokens) == 1_644_520
    assert s.distinct_tokens == len(set(tokens)) == 32_192
    assert s.distinct_characters == len(set(sentence)) == 407
    assert s.characters_per_token == pytest.approx(813_313 / 205_558)


def test_getsizeof_explained(enc):
    s = words.size_comparison(100_000, enc)
    # a list: a 56-byte header and one 8-byte pointer per token, whatever the ids are
    assert s.tokens_getsizeof == 56 + 8 * s.tokens
    # the string holds an emoji, so CPython keeps 4 bytes for every character
    assert s.python_bytes_per_char == 4
    assert s.string_getsizeof - 4 * s.characters < 100
    # below the first emoji ('😂', rank 4,730) every character is ASCII: 1 byte each
    small = words.size_comparison(1_000, enc)
    assert small.python_bytes_per_char == 1
    assert (small.characters, small.tokens, small.string_getsizeof, small.tokens_getsizeof) == (6063, 1046, 6112, 8424)
    assert words.top_words(4_730)[-1] == "😂"
    assert words.size_comparison(4_729, enc).python_bytes_per_char == 1
    assert words.size_comparison(4_730, enc).python_bytes_per_char == 4


def test_tokens_per_word_table(enc):
    table = words.tokens_per_word(["the", "bookkeepers", "biting", "😂"], enc)
    assert list(table.columns) == ["rank", "word", "frequency", "zipf", "tokens", "tokens_no_space", "pieces"]
    assert table["rank"].tolist() == [1, 2, 3, 4]
    assert table["tokens"].tolist() == [len(enc.encode(" " + w)) for w in table["word"]] == [1, 2, 1, 2]
    assert table["tokens_no_space"].tolist() == [len(enc.encode(w)) for w in table["word"]] == [1, 2, 2, 2]
    assert table["pieces"].tolist() == ["␣the", "␣book|keepers", "␣biting", "␣⟨F0 9F 98⟩|⟨82⟩"]
    assert table["frequency"].iloc[0] == wordfreq.get_frequency_dict("en")["the"]
    assert table["zipf"].iloc[0] == pytest.approx(wordfreq.zipf_frequency("the", "en"), abs=0.01)


def test_tokens_per_word_sums_to_the_joined_strings_token_count(enc, top_100k_table):
    """Each word after the first follows a space, so per-word counts add up to the notebook's."""
    first = len(enc.encode(top_100k_table["word"].iloc[0]))
    assert first + top_100k_table["tokens"].iloc[1:].sum() == words.size_comparison(100_000, enc).tokens


def test_single_token_share(enc, top_100k_table):
    independent = sum(len(enc.encode(" " + w)) == 1 for w in wordfreq.top_n_list("en", 100_000)) / 100_000
    assert words.single_token_share(top_100k_table) == independent == 0.20779
    assert words.single_token_share(top_100k_table, "tokens_no_space") == 0.08639
    assert words.single_token_share(top_100k_table.iloc[:1000]) == 0.954
    assert words.single_token_share(top_100k_table.iloc[:0]) == 0.0


def test_coverage():
    freq = wordfreq.get_frequency_dict("en")
    top = words.top_words(100_000)
    assert words.coverage(top) == pytest.approx(sum(freq[w] for w in top))
    assert round(words.coverage(top), 3) == 0.964
    assert words.coverage([]) == 0.0


def test_sample_by_log_rank(top_100k_table):
    sample = words.sample_by_log_rank(top_100k_table, max_points=1000)
    assert len(sample) <= 1000
    ranks = sample["rank"].tolist()
    assert ranks == sorted(set(ranks))
    assert ranks[:50] == list(range(1, 51))  # every word near the top
    assert ranks[-1] == 100_000  # and the last one
    small = top_100k_table.iloc[:10]
    assert words.sample_by_log_rank(small).equals(small)


def test_mean_tokens_by_log_rank(top_100k_table):
    bins = words.mean_tokens_by_log_rank(top_100k_table, bins_per_decade=10)
    assert bins["words"].sum() == 100_000
    assert bins["first_rank"].iloc[0] == 1 and bins["last_rank"].iloc[-1] == 100_000
    assert bins["words"].iloc[-1] > 1000  # rank 100,000 joins its neighbours, no one-word bin
    # weighted mean of the bins == the table's mean
    mean = (bins["mean_tokens"] * bins["words"]).sum() / 100_000
    assert mean == pytest.approx(top_100k_table["tokens"].mean())
    assert bins["mean_tokens"].iloc[0] == 1.0 and bins["mean_tokens"].iloc[-1] > 2.3
    assert words.mean_tokens_by_log_rank(top_100k_table.iloc[:0]).empty


def test_words_of_normalises_like_wordfreq():
    assert words.words_of("I textd my frend Siobhan!") == ["i", "textd", "my", "frend", "siobhan"]
    assert words.words_of("") == []
    assert words.words_of("!!! ...") == []
    assert words.words_of("x" * 10_000) == ["x" * words.MAX_TEXT_CHARS]


def test_unknown_words():
    assert words.unknown_words("the qwzx cat Bob", {"the", "cat", "bob"}) == ["qwzx"]
    assert words.unknown_words("qwzx the qwzx", {"the"}) == ["qwzx"]
    assert words.unknown_words("", {"the"}) == []
    top = set(words.top_words(10_000))
    assert words.unknown_words("I textd my frend Oluwaseun about the rizzler", top) == [
        "textd", "frend", "oluwaseun", "rizzler",
    ]


def test_vocabulary_check(enc):
    ranks = words.word_ranks()
    assert ranks["the"] == 1 and ranks["frend"] == 99_289 and len(ranks) == words.MAX_WORDS
    table = words.vocabulary_check("I textd my frend Oluwaseun about the rizzler", ranks, 100_000, enc)
    assert table["word"].tolist() == ["i", "textd", "my", "frend", "oluwaseun", "about", "the", "rizzler"]
    assert table.set_index("word")["known"].to_dict() == {
        "i": True, "textd": False, "my": True, "frend": True,
        "oluwaseun": False, "about": True, "the": True, "rizzler": False,
    }
    assert pd.isna(table.set_index("word")["rank"]["rizzler"])
    # the byte-level BPE writes every word, known or not
    assert table["tokens"].tolist() == [len(enc.encode(" " + w)) for w in table["word"]]
    assert table.set_index("word")["pieces"]["rizzler"] == "␣r|izz|ler"
    # the same word is known to a bigger vocabulary only
    at_99k = words.vocabulary_check("frend", ranks, 99_288, enc)
    assert at_99k["known"].tolist() == [False]


@pytest.mark.parametrize("text", ["", "   ", "😂🦙", "東京タワー 北京欢迎你", "<img src=x onerror=alert(1)>", "a" * 10_000, "\x00\x07 tab\there"])
def test_vocabulary_check_awkward_text(enc, text):
    table = words.vocabulary_check(text, words.word_ranks(), 100_000, enc)
    assert list(table.columns) == ["word", "times", "known", "number", "rank", "tokens", "pieces"]
    for word, tokens in zip(table["word"], table["tokens"]):
        assert tokens == len(enc.encode(" " + word)) >= 1


def test_vocabulary_check_counts_a_repeated_word_each_time(enc):
    """ "the the the" is three words of one kind, written with three tokens, not "1 of 1". """
    table = words.vocabulary_check("the the the", words.word_ranks(), 100_000, enc)
    assert table[["word", "times", "tokens"]].values.tolist() == [["the", 3, 1]]
    summary = words.check_summary(table)
    assert (summary.words, summary.distinct, summary.known, summary.tokens) == (3, 1, 1, 3)
    assert summary.tokens == len(enc.encode_ordinary(" the the the"))
    mixed = words.check_summary(words.vocabulary_check("The cat, the zzqx cat", words.word_ranks(), 100_000, enc))
    assert (mixed.words, mixed.distinct, mixed.known, mixed.unknown) == (5, 3, 2, ("zzqx",))


def test_numbers_are_told_apart_from_unknown_words(enc):
    """wordfreq's lists leave out every run of two digits or more: such a word is a number,
    not a typo or a new word."""
    ranks = words.word_ranks()
    table = words.vocabulary_check("I paid 42 pounds for 3.5 kg in 1999, not 7", ranks, 100_000, enc)
    by_word = table.set_index("word")
    assert by_word.loc[["42", "3.5", "1999"], "number"].tolist() == [True, True, True]
    assert not by_word.loc[["7", "paid"], "number"].any()  # a single digit is in the list
    assert not by_word.loc[["42", "3.5", "1999"], "known"].any()
    assert all(w not in ranks for w in ["42", "3.5", "1999"])  # wordfreq's list really has none
    assert all(wordfreq.word_frequency(w, "en") > 0 for w in ["42", "1999"])  # it counts them apart
    summary = words.check_summary(table)
    assert summary.numbers == ("42", "3.5", "1999") and summary.unknown == ()


def test_vocabulary_check_caps_pieces(enc):
    table = words.vocabulary_check("ab" * 1000, words.word_ranks(), 100_000, enc, max_pieces=5)
    tokens = table["tokens"].iloc[0]
    assert table["pieces"].iloc[0].endswith(f"… ({tokens - 5:,} more)")
    assert table["pieces"].iloc[0].count("|") == 4


def test_embedding_params():
    assert words.embedding_params(100_000, 32) == 3_200_000
    assert words.embedding_params(100_277, 4096) == 410_734_592
    assert words.embedding_params(0, 8) == 0
    with pytest.raises(ValueError):
        words.embedding_params(10, 0)


def test_bpe_vocab_sizes_match_the_real_encoding(enc):
    assert words.BPE_VOCAB_SIZES["cl100k_base"] == enc.n_vocab == 100_277
    assert words.BPE_VOCAB_SIZES["gpt2"] == 50_257  # GPT-2: 50,000 merges + 256 bytes + <|endoftext|>


def test_embedding_comparison():
    table = words.embedding_comparison(100_000, 407)
    assert table["vocab_size"].tolist() == [100_000, words.MAX_WORDS, 100_277, 50_257, 256, 407]
    assert table["writes_any_text"].tolist() == [False, False, True, True, True, False]
    for d in words.D_MODELS:
        assert table[f"d={d}"].tolist() == [v * d for v in table["vocab_size"]]
    assert table["d=32"].iloc[0] == 3_200_000
    assert math.isclose(table["d=4096"].iloc[1], 319_938 * 4096)
