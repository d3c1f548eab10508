"""Why whole words make bad tokens: the notebook's first experiment, measured.

The notebook takes the 100,000 most frequent English words (from `wordfreq`), joins them into
one string and compares its size with the size of its `cl100k_base` token list. This module
repeats that experiment for any N and adds the measurements the notebook does not print:

    top_words(5)                          -> ['the', 'to', 'and', 'of', 'a']
    size_comparison(100_000, enc)         -> characters, UTF-8 bytes, tokens, sys.getsizeof ...
    tokens_per_word(top_words(N), enc)    -> one row per word: rank, frequency, tokens, pieces
    single_token_share(table)             -> 0.208 for the top 100,000 words
    unknown_words("the qwzx cat", vocab)  -> ['qwzx']
    embedding_params(100_277, 32)         -> 3,208,864 numbers in the embedding table

The lesson in numbers: common words are one token each, rare words split into a few pieces
that are shared with other words, and a tokenizer with ~100k pieces can write *any* text,
while a vocabulary of 100k whole words still has no id for a typo, a name or a new word.

Nothing here imports streamlit and nothing is memoised: a page caches what it needs.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import pandas as pd
import tiktoken
import wordfreq

from wordfreq.numbers import has_digit_sequence

from minillm.display import readable

LANG = "en"

#: How many English words wordfreq knows ('best' is its 'large' list for English). Multi-digit
#: numbers are left out of its top-N lists, so this is 319,938 rather than the 321,180 entries
#: of the frequency table.
MAX_WORDS = len(wordfreq.top_n_list(LANG, 10**7))

#: The notebook's model width; 768 is GPT-2 small, 4096 a 7-billion-parameter model.
D_MODELS = (32, 768, 4096)

#: Vocabulary sizes of well-known byte-level BPE tokenizers (their `n_vocab`). cl100k_base is
#: GPT-3.5/GPT-4's; gpt2 is GPT-2's. Numbers only: their files are not needed for this.
BPE_VOCAB_SIZES = {"cl100k_base": 100_277, "gpt2": 50_257}

#: The longest text `unknown_words` and `vocabulary_check` look at (a page shows the cap).
MAX_TEXT_CHARS = 2_000


def top_words(n: int) -> list[str]:
    """The `n` most frequent English words, most frequent first (wordfreq's 'best' list).

    Words are lower-case, as wordfreq stores them, and include contractions ("don't"), names,
    emoji and a few symbols: everything that appears between spaces in real English text.

    >>> top_words(5)
    ['the', 'to', 'and', 'of', 'a']

    A fresh list is returned (wordfreq caches its own; mutating ours cannot harm it).
    """
    if not 1 <= n <= MAX_WORDS:
        raise ValueError(f"n must be between 1 and {MAX_WORDS:,} (wordfreq's English words)")
    return list(wordfreq.top_n_list(LANG, n))


def coverage(words: Sequence[str]) -> float:
    """The share of running English text made of these words (the sum of their frequencies).

    The top 1,000 words make up 69% of what people write; the top 100,000 make up 96.4%, so
    even a 100,000-word vocabulary meets an unknown word about once every 28 words.
    """
    frequencies = wordfreq.get_frequency_dict(LANG)
    return math.fsum(frequencies.get(w, 0.0) for w in words)


# --------------------------------------------------------------------------------------------
# The notebook's experiment: one string of N words against its token list


@dataclass(frozen=True)
class SizeComparison:
    """The top-N words joined by spaces, measured as text and as cl100k_base tokens.

    `string_getsizeof` and `tokens_getsizeof` are the two numbers the notebook printed. They
    are sizes of *Python objects*, not of the information:

    - a `str` stores 1 byte per character if every character is ASCII, 2 or 4 if one is not
      (PEP 393). '😂' is the 4,730th most frequent word, so from N = 4,730 on every character
      of the joined string costs 4 bytes (`python_bytes_per_char`), spaces included. The notebook measured
      the string before encoding it: tiktoken also caches a UTF-8 copy inside a non-ASCII
      string, and `sys.getsizeof` would grow by that copy afterwards.
    - a `list` stores one 8-byte pointer per item plus a 56-byte header; the integer objects the
      pointers lead to are not counted. So `tokens_getsizeof == 56 + 8 * tokens`: it counts
      tokens, it does not weigh them.
    """

    n_words: int
    characters: int  # len(string): Unicode characters, spaces included
    utf8_bytes: int  # len(string.encode("utf-8")): the size on disk or on the wire
    string_getsizeof: int  # sys.getsizeof(string): the notebook's first number
    python_bytes_per_char: int  # 1, 2 or 4: how CPython stores this string's characters
    tokens: int  # len(encoding.encode(string))
    tokens_getsizeof: int  # sys.getsizeof(token list): the notebook's second number
    distinct_tokens: int  # how many different token ids the string uses
    distinct_characters: int  # how many different characters it uses

    @property
    def characters_per_token(self) -> float:
        return self.characters / self.tokens


def _python_bytes_per_char(text: str) -> int:
    widest = max(map(ord, text), default=0)
    return 1 if widest < 0x100 else 2 if widest < 0x10000 else 4


def size_comparison(n: int, encoding: tiktoken.Encoding) -> SizeComparison:
    """The notebook's experiment for the top `n` words.

    >>> from minillm.tokenizers import load_encoding
    >>> s = size_comparison(1_000, load_encoding("cl100k_base"))
    >>> s.characters, s.tokens, s.string_getsizeof, s.tokens_getsizeof
    (6063, 1046, 6112, 8424)
    """
    sentence = " ".join(top_words(n))
    string_getsizeof = sys.getsizeof(sentence)  # before encoding: see the class docstring
    tokens = encoding.encode(sentence)
    return SizeComparison(
        n_words=n,
        characters=len(sentence),
        utf8_bytes=len(sentence.encode("utf-8")),
        string_getsizeof=string_getsizeof,
        python_bytes_per_char=_python_bytes_per_char(sentence),
        tokens=len(tokens),
        tokens_getsizeof=sys.getsizeof(tokens),
        distinct_tokens=len(set(tokens)),
        distinct_characters=len(set(sentence)),
    )


# --------------------------------------------------------------------------------------------
# Tokens per word, by frequency rank


def _pieces_text(encoding: tiktoken.Encoding, ids: Sequence[int], shown: dict[int, str] | None = None) -> str:
    """Pieces joined by '|', each as `minillm.display.readable` shows it: ' bookkeepers' ->
    '␣book|keepers', '😂' -> '␣⟨F0 9F 98⟩|⟨82⟩' (a piece that holds part of a character shows
    its bytes in hex). `shown` caches each id's text (most ids come back many times)."""
    shown = {} if shown is None else shown
    for i in ids:
        if i not in shown:
            shown[i] = readable(encoding.decode_single_token_bytes(i))
    return "|".join(shown[i] for i in ids)


def tokens_per_word(words: Sequence[str], encoding: tiktoken.Encoding) -> pd.DataFrame:
    """How many tokens each word costs, most frequent word first.

    Columns: `rank` (1 = most frequent), `word`, `frequency` (wordfreq's share of all words
    written), `zipf` (log10 of occurrences per billion words: 7.7 for 'the', 3 for a rare
    word), `tokens` and `pieces` for the word *with a leading space*, and `tokens_no_space`
    for the bare word.

    Why a leading space: in running text (and in the notebook's joined string) a word follows
    a space, and byte-level BPEs learn " word" as the common unit: ' the' is one token, and
    the joined string's token count equals the sum of these counts (the first word aside).
    At the very start of a text a word has no space and more often splits: 'biting' is one
    token as ' biting' but two as 'biting'.

    >>> from minillm.tokenizers import load_encoding
    >>> table = tokens_per_word(["the", "bookkeepers", "biting"], load_encoding("cl100k_base"))
    >>> table["tokens"].tolist(), table["tokens_no_space"].tolist(), table["pieces"].tolist()
    ([1, 2, 1], [1, 2, 2], ['␣the', '␣book|keepers', '␣biting'])

    All 319,938 words take a few seconds, most of it encoding each bare word.
    """
    frequencies = wordfreq.get_frequency_dict(LANG)
    spaced = [encoding.encode_ordinary(" " + w) for w in words]
    shown: dict[int, str] = {}  # each distinct id made readable once, not once per use
    pieces = [_pieces_text(encoding, ids, shown) for ids in spaced]
    frequency = [frequencies.get(w, 0.0) for w in words]
    return pd.DataFrame(
        {
            "rank": range(1, len(words) + 1),
            "word": list(words),
            "frequency": frequency,
            "zipf": [round(math.log10(f * 1e9), 2) if f > 0 else 0.0 for f in frequency],
            "tokens": [len(ids) for ids in spaced],
            "tokens_no_space": [len(encoding.encode_ordinary(w)) for w in words],
            "pieces": pieces,
        }
    )


def single_token_share(table: pd.DataFrame, column: str = "tokens") -> float:
    """The share of the table's words that are exactly one token (0.0 for an empty table).

    For cl100k_base: 95% of the top 1,000 words, 21% of the top 100,000 (with a leading space).
    """
    return float((table[column] == 1).mean()) if len(table) else 0.0


def sample_by_log_rank(table: pd.DataFrame, max_points: int = 3_000) -> pd.DataFrame:
    """At most `max_points` rows, spread evenly over log(rank): every word near the top, a
    thinner and thinner sample further down. On a log-scale axis the points look evenly dense,
    and a chart stays small however large N is."""
    n = len(table)
    if n <= max_points:
        return table
    positions = sorted({round(math.exp(i * math.log(n) / (max_points - 1))) - 1 for i in range(max_points)})
    return table.iloc[positions]


def mean_tokens_by_log_rank(table: pd.DataFrame, bins_per_decade: int = 10) -> pd.DataFrame:
    """Mean tokens per word in bins of equal width on a log(rank) axis.

    Columns: `rank` (the bin's geometric middle), `mean_tokens`, `single_token_share`,
    `words` (how many words fell in the bin), `first_rank`, `last_rank`.
    """
    if table.empty:
        return pd.DataFrame(columns=["rank", "mean_tokens", "single_token_share", "words", "first_rank", "last_rank"])
    # The last rank may sit exactly on a bin edge (N = 100,000): keep it in the bin before,
    # rather than drawing a one-word bin.
    last_bin = max(math.ceil(math.log10(table["rank"].max()) * bins_per_decade) - 1, 0)
    bin_of = (table["rank"].map(math.log10) * bins_per_decade).astype(int).clip(upper=last_bin)
    grouped = table.groupby(bin_of)
    out = pd.DataFrame(
        {
            "mean_tokens": grouped["tokens"].mean(),
            "single_token_share": grouped["tokens"].apply(lambda t: float((t == 1).mean())),
            "words": grouped["tokens"].size(),
            "first_rank": grouped["rank"].min(),
            "last_rank": grouped["rank"].max(),
        }
    )
    out.insert(0, "rank", (out["first_rank"] * out["last_rank"]) ** 0.5)
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Unknown words


def words_of(text: str) -> list[str]:
    """The words of `text` the way wordfreq counts them: lower-case, punctuation dropped, emoji
    and each run of CJK characters kept as a word. The same rules built its word list, so a
    word is "known" exactly when wordfreq's list holds it.

    >>> words_of("I textd my frend Siobhan!")
    ['i', 'textd', 'my', 'frend', 'siobhan']
    """
    return wordfreq.tokenize(text[:MAX_TEXT_CHARS], LANG)


def unknown_words(text: str, vocab_words: Collection[str]) -> list[str]:
    """The words of `text` (see `words_of`) that a word vocabulary has no id for, each once,
    in order of appearance.

    >>> unknown_words("the qwzx cat Bob", {"the", "cat", "bob"})
    ['qwzx']
    """
    return list(dict.fromkeys(w for w in words_of(text) if w not in vocab_words))


def word_ranks() -> dict[str, int]:
    """Every English word wordfreq lists, with its frequency rank (1 = 'the').

    A top-N word vocabulary knows a word exactly when its rank is at most N.
    """
    return {w: i for i, w in enumerate(wordfreq.top_n_list(LANG, MAX_WORDS), start=1)}


def is_number(word: str) -> bool:
    """Does wordfreq count `word` as a number (a run of two digits or more, "42", "3.5",
    "1999")? Its top-N lists leave every such word out, and estimate how common a number is
    from its digits instead; so no word vocabulary built from those lists has an id for one.

    >>> [w for w in ["42", "3.5", "7", "2nd", "cat"] if is_number(w)]
    ['42', '3.5']
    """
    return has_digit_sequence(word)


#: What the page says about numbers (see `is_number`).
NUMBERS_NOTE = ("wordfreq's word list holds no number of two digits or more (it estimates how "
                "common a number is from its digits instead), so a word vocabulary built from "
                "it has no id for them either; a byte-level BPE writes them with digit pieces.")


def vocabulary_check(
    text: str, ranks: dict[str, int], n: int, encoding: tiktoken.Encoding, max_pieces: int = 40
) -> pd.DataFrame:
    """Each distinct word of `text`: does a top-`n` word vocabulary know it, and how does the
    byte-level BPE `encoding` write it (with a leading space, as in running text)?

    Columns: `word`, `times` (how often the text has it), `known` (bool), `number` (bool: see
    `is_number`; a number is not known either), `rank` (its wordfreq rank, or <NA> if its list
    does not hold it: then no word vocabulary built from wordfreq would know it), `tokens` (for
    the word once), `pieces` (the first `max_pieces` pieces joined by '|', then '… (k more)').

    >>> from minillm.tokenizers import load_encoding
    >>> table = vocabulary_check("the the the 42", word_ranks(), 100, load_encoding("cl100k_base"))
    >>> table[["word", "times", "known", "number", "tokens"]].values.tolist()
    [['the', 3, True, False, 1], ['42', 1, False, True, 2]]
    """
    rows = []
    shown: dict[int, str] = {}
    for word, times in Counter(words_of(text)).items():
        ids = encoding.encode_ordinary(" " + word)
        pieces = _pieces_text(encoding, ids[:max_pieces], shown)
        if len(ids) > max_pieces:
            pieces += f"… ({len(ids) - max_pieces:,} more)"
        rank = ranks.get(word)
        rows.append((word, times, rank is not None and rank <= n, is_number(word), rank, len(ids), pieces))
    table = pd.DataFrame(rows, columns=["word", "times", "known", "number", "rank", "tokens", "pieces"])
    table["rank"] = table["rank"].astype("Int64")
    table["known"] = table["known"].astype(bool)
    table["number"] = table["number"].astype(bool)
    return table


@dataclass(frozen=True)
class CheckSummary:
    """What `vocabulary_check` found, counted over the whole text (a word used twice counts
    twice in `words` and `tokens`)."""

    words: int  # words in the text
    distinct: int  # different words
    known: int  # different words the vocabulary knows
    unknown: tuple[str, ...]  # different words it has no id for, numbers left out
    numbers: tuple[str, ...]  # different words that are numbers (no id for them either)
    tokens: int  # the BPE's tokens for all the words, each written after a space


def check_summary(table: pd.DataFrame) -> CheckSummary:
    """Count a `vocabulary_check` table.

    >>> from minillm.tokenizers import load_encoding
    >>> check_summary(vocabulary_check("the the the", word_ranks(), 100, load_encoding("cl100k_base")))
    CheckSummary(words=3, distinct=1, known=1, unknown=(), numbers=(), tokens=3)
    """
    unknown = table[~table["known"]]
    return CheckSummary(
        words=int(table["times"].sum()),
        distinct=len(table),
        known=int(table["known"].sum()),
        unknown=tuple(unknown.loc[~unknown["number"], "word"]),
        numbers=tuple(unknown.loc[unknown["number"], "word"]),
        tokens=int((table["times"] * table["tokens"]).sum()),
    )


# --------------------------------------------------------------------------------------------
# The cost: one row of d_model numbers per vocabulary entry


def embedding_params(vocab_size: int, d_model: int) -> int:
    """Numbers in an embedding table: one row of `d_model` learned numbers per id.

    The notebook's model has a second table of the same size, the output layer (`lm_head`),
    which scores every id at every step, so a vocabulary costs about twice this.

    >>> embedding_params(100_000, 32)
    3200000
    """
    if vocab_size < 0 or d_model < 1:
        raise ValueError("vocab_size must be >= 0 and d_model >= 1")
    return vocab_size * d_model


def embedding_comparison(
    n_words: int, distinct_characters: int, d_models: Sequence[int] = D_MODELS
) -> pd.DataFrame:
    """Embedding-table sizes for each way of cutting text, for each model width.

    Rows: a word vocabulary of the top `n_words` words (and all of wordfreq's English words),
    cl100k_base, gpt2, the 256 bytes, and the `distinct_characters` characters of those words.
    Columns: `vocabulary`, `vocab_size`, `writes_any_text` (False for words and characters:
    they have no id for what they never saw), then one `d=<width>` column per width.
    """
    rows = [
        (f"words (top {n_words:,})", n_words, False),
        ("words (all of wordfreq's)", MAX_WORDS, False),
        ("cl100k_base (GPT-4)", BPE_VOCAB_SIZES["cl100k_base"], True),
        ("gpt2 (GPT-2)", BPE_VOCAB_SIZES["gpt2"], True),
        ("bytes", 256, True),
        ("characters (of those words)", distinct_characters, False),
    ]
    table = pd.DataFrame(rows, columns=["vocabulary", "vocab_size", "writes_any_text"])
    for d in d_models:
        table[f"d={d}"] = [embedding_params(v, d) for v in table["vocab_size"]]
    return table
