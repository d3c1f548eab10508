"""Comparing tokenizers on one text, and how densely a BPE's pieces are shared between words.

The "Compare tokenizers" lab asks: *how do different tokenizers cut the same sentence into
pieces?* This module holds everything that lab computes, so a notebook can reproduce it:

    >>> from minillm.tokenizers import ByteTokenizer
    >>> row = tokenize("bytes", ByteTokenizer(), "héllo")
    >>> row.n_tokens, row.n_chars, round(row.chars_per_token, 2)
    (6, 5, 0.83)

Two baseline tokenizers live here because they exist only to be compared:

- `WordListTokenizer`: a word-level vocabulary of the top-N English words from `wordfreq`
  (the notebook's `top_n_list('en', 100000)`). Anything not in the list becomes ``[UNK]``,
  the way real word-level models handle unknown words.
- `CodePointTokenizer`: one token per Unicode character, the id being its code point.

The second half answers the notebook's remark that we want components "dense in terms of
relationships": for each cl100k_base piece, which of the top-N words contain it
(`build_piece_index`), and how that compares with a word vocabulary, where every piece is in
exactly one word (`sharing_distribution`).
"""

from __future__ import annotations

import hashlib
import re
import string
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

import pandas as pd
import tiktoken

from minillm.tokenizers import (
    Encoded,
    TiktokenTokenizer,
    TokenPiece,
    Tokenizer,
    VocabListTokenizer,
    WordTokenizer,
    token_pieces,
)

#: Longest text the lab tokenizes (characters); more is cut, with a message saying so.
MAX_TEXT_CHARS = 20_000
#: Token pieces kept per tokenizer for display (counts always cover the whole text).
MAX_PIECES = 2_000

#: The notebook's sentences, and one of ours with the things that trip tokenizers up.
PRESET_TEXTS: dict[str, str] = {
    "BPE encoder (the notebook)": "I am writing this to demonstrate how a BPE encoder works",
    "…with “!”": "I am writing this to demonstrate how a BPE encoder works!",
    "bookkeepers (the notebook)": (
        "bookkeepers keep the books for bookies who do the booking for bookers"
    ),
    "Emoji, accents, other scripts": (
        "Our llama 🦙 ate a crème brûlée in 東京.\n\tIt said: naïve tokenizers   split words!"
    ),
}

#: Sizes offered for the top-N wordfreq word list (the notebook uses 100,000).
WORD_LIST_SIZES = (1_000, 10_000, 100_000)
DEFAULT_WORD_LIST_SIZE = 100_000


# --------------------------------------------------------------------------------------------
# Text limits


def check_text(text: str, max_chars: int = MAX_TEXT_CHARS) -> tuple[str, str | None]:
    """The text to tokenize, and a message when it was cut to `max_chars` (else None).

    >>> check_text("abcdef", max_chars=4)
    ('abcd', 'Your text has 6 characters; only the first 4 are tokenized below (the limit keeps the page fast for the whole class).')
    """
    if len(text) <= max_chars:
        return text, None
    return text[:max_chars], (
        f"Your text has {len(text):,} characters; only the first {max_chars:,} are tokenized "
        "below (the limit keeps the page fast for the whole class)."
    )


# --------------------------------------------------------------------------------------------
# Baseline tokenizers

#: A word, possibly with apostrophes inside ("don't", "women's"), or one punctuation mark.
WORD_PATTERN = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]")
UNK = "[UNK]"


class WordListTokenizer(VocabListTokenizer):
    """A word-level vocabulary from a fixed word list, with ``[UNK]`` (id 0) for the rest.

    Text is lowercased and cut into words and single punctuation marks; whitespace is thrown
    away (a word-level model never sees it).

    >>> tok = WordListTokenizer(["the", "cat", "sat"])
    >>> tok.encode_known("The cat purred.")
    Encoded(ids=[1, 2, 0, 0], unknown=['purred', '.'])
    >>> tok.decode([1, 2, 0])
    'the cat [UNK]'
    """

    unit = "word"
    separator = " "
    unknown_id = 0  # the id of [UNK]; token chips mark it
    #: The rule, as the Compare page says it (`minillm.tokenizers.WordTokenizer.rule` is the
    #: other one, the notebook's, that a model trains with).
    rule = ("text is lowercased and cut into words and single punctuation marks, the way "
            "wordfreq counts words; spaces are thrown away, so “Cat,” is “cat” and “,”")

    def __init__(self, words: Sequence[str], display_name: str | None = None):
        self.vocab = [UNK] + [w for w in dict.fromkeys(words) if w != UNK]
        self.stoi = {w: i for i, w in enumerate(self.vocab)}
        self.display_name = display_name or f"word-level ({len(self.vocab) - 1:,} words)"

    def encode_known(self, text: str) -> Encoded:
        ids, unknown = [], {}
        for word in WORD_PATTERN.findall(text):
            token_id = self.stoi.get(word.lower().replace("’", "'"), 0)
            ids.append(token_id)
            if token_id == 0:
                unknown.setdefault(word, None)
        return Encoded(ids, list(unknown))


def word_list_tokenizer(n: int) -> WordListTokenizer:
    """The top-`n` English words of wordfreq plus the ASCII punctuation marks its list lacks
    (real word-level vocabularies add them), and ``[UNK]`` for everything else."""
    from wordfreq import top_n_list

    words = top_n_list("en", n) + list(string.punctuation)
    return WordListTokenizer(words, f"word-level (top {n:,} words + punctuation)")


def word_vocabulary_parts(tokenizer: WordListTokenizer, n: int) -> str:
    """What a top-`n` word vocabulary's ids are, adding up to its size in words.

    >>> word_vocabulary_parts(word_list_tokenizer(100_000), 100_000)
    "100,032 ids: the top 100,000 words, 31 punctuation marks (the 32 of ASCII but '_', which wordfreq lists as a word) and [UNK]"
    """
    marks = [p for p in string.punctuation if tokenizer.stoi.get(p, 0) > n]
    listed = [p for p in string.punctuation if p not in marks]
    but = f" but {', '.join(map(repr, listed))}, which wordfreq lists as a word" if listed else ""
    return (f"{tokenizer.vocab_size:,} ids: the top {n:,} words, {len(marks)} punctuation marks "
            f"(the {len(string.punctuation)} of ASCII{but}) and {UNK}")


def word_list_about(tokenizer: WordListTokenizer, n: int) -> str:
    """What the Compare page says of its word-level tokenizer: its ids, its rule, and the other
    rule, the notebook's, that the word models of Train and Generate use."""
    return (f"The top {n:,} English words from wordfreq plus punctuation "
            f"({word_vocabulary_parts(tokenizer, n)}). Here {WordListTokenizer.rule}; anything "
            "not in the list becomes [UNK]. The word models of Train and Generate keep the "
            f"notebook's rule instead: {WordTokenizer.rule}.")


class CodePointTokenizer(Tokenizer):
    """One token per Unicode character; its id is the code point (``"A"`` is 65).

    It can encode any text, but its vocabulary is every possible code point (1,114,112).

    >>> CodePointTokenizer().encode("hé🦙")
    [104, 233, 129433]
    """

    display_name = "characters (Unicode code points)"
    unit = "character"

    @property
    def vocab_size(self) -> int:
        return 0x110000

    def encode_known(self, text: str) -> Encoded:
        return Encoded([ord(c) for c in text], [])

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(chr(i) for i in ids)

    def piece_bytes(self, token_id: int) -> bytes:
        # A lone surrogate is not valid UTF-8; keep its bytes so it is shown as bytes.
        return chr(token_id).encode("utf-8", errors="surrogatepass")


def bpe_fingerprint(encoding: tiktoken.Encoding) -> str:
    """A short digest of an encoding's pattern and vocabulary: a cache key for a trained BPE.

    Two encodings with the same pieces at the same ranks (and the same pre-split) have the
    same fingerprint, whatever they are called.
    """
    digest = hashlib.sha1(encoding._pat_str.encode())
    for piece, rank in sorted(encoding._mergeable_ranks.items(), key=lambda kv: kv[1]):
        digest.update(rank.to_bytes(4, "big") + len(piece).to_bytes(2, "big") + piece)
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# One text through one tokenizer


@dataclass(frozen=True)
class Tokenized:
    """One tokenizer's view of one text: every id, and the first `MAX_PIECES` pieces to show."""

    name: str
    vocab_size: int
    n_chars: int
    ids: tuple[int, ...]
    pieces: tuple[TokenPiece, ...]
    unknown: tuple[str, ...] = ()

    @property
    def n_tokens(self) -> int:
        return len(self.ids)

    @property
    def chars_per_token(self) -> float:
        """Characters of text per token: higher means the tokenizer packs more in a token."""
        return self.n_chars / self.n_tokens if self.ids else 0.0


def tokenize(name: str, tokenizer: Tokenizer, text: str, max_pieces: int = MAX_PIECES) -> Tokenized:
    """Encode `text` (unknown words become the tokenizer's unknown id, or are dropped and
    listed) and keep the display pieces of the first `max_pieces` tokens."""
    encoded = tokenizer.encode_known(text)
    ids = tuple(encoded.ids)
    pieces = tuple(token_pieces(tokenizer, ids[:max_pieces]))
    return Tokenized(name, tokenizer.vocab_size, len(text), ids, pieces, tuple(encoded.unknown))


def ids_text(ids: Sequence[int], limit: int = MAX_PIECES) -> str:
    """The ids as a comma-separated list, cut after `limit` with a count of the rest.

    >>> ids_text([5, 6, 7], limit=2)
    '5, 6, … (1 more)'
    """
    more = f", … ({len(ids) - limit:,} more)" if len(ids) > limit else ""
    return ", ".join(map(str, ids[:limit])) + more


def summary_table(rows: Sequence[Tokenized]) -> pd.DataFrame:
    """One line per tokenizer: vocabulary size, tokens, characters per token, unknown words."""
    return pd.DataFrame(
        {
            "Tokenizer": [r.name for r in rows],
            "Vocabulary size": [r.vocab_size for r in rows],
            "Tokens": [r.n_tokens for r in rows],
            "Characters per token": [round(r.chars_per_token, 2) for r in rows],
            "Unknown words": [len(r.unknown) for r in rows],
        }
    )


# --------------------------------------------------------------------------------------------
# Shared pieces: which words contain a piece?


@dataclass(frozen=True)
class PieceIndex:
    """For each piece of an encoding, the words (in frequency order) whose encoding holds it.

    A word is encoded as it appears inside a sentence, after a space: ``" bookkeeping"``.
    """

    n_words: int
    words_by_piece: dict[int, tuple[str, ...]]

    def words_with(self, piece_id: int) -> tuple[str, ...]:
        return self.words_by_piece.get(piece_id, ())


def build_piece_index(encoding: tiktoken.Encoding, words: Sequence[str]) -> PieceIndex:
    """Index which `words` contain which pieces of `encoding` (each word counted once a piece).

    >>> from minillm.tokenizers import load_encoding
    >>> index = build_piece_index(load_encoding("cl100k_base"), ["book", "bookkeeping", "cat"])
    >>> index.words_with(2363)  # " book"
    ('book', 'bookkeeping')
    """
    collected: dict[int, list[str]] = {}
    for word in words:
        for piece_id in dict.fromkeys(encoding.encode_ordinary(" " + word)):
            collected.setdefault(piece_id, []).append(word)
    return PieceIndex(len(words), {k: tuple(v) for k, v in collected.items()})


def word_piece_index(encoding: tiktoken.Encoding, n: int) -> PieceIndex:
    """`build_piece_index` over the top-`n` English words of wordfreq."""
    from wordfreq import top_n_list

    return build_piece_index(encoding, top_n_list("en", n))


def pieces_in_order(ids: Iterable[int], limit: int | None = None) -> list[int]:
    """The distinct ids of a text, in order of first appearance (at most `limit`).

    >>> pieces_in_order([5, 3, 5, 9, 3], limit=2)
    [5, 3]
    """
    distinct = list(dict.fromkeys(ids))
    return distinct if limit is None else distinct[:limit]


def most_shared(piece_ids: Sequence[int], index: PieceIndex) -> int | None:
    """The piece among `piece_ids` found in the most words (the first one on a tie)."""
    if not piece_ids:
        return None
    return max(piece_ids, key=lambda p: len(index.words_with(p)))


def suggested_piece(pieces: Sequence[TokenPiece], index: PieceIndex) -> int | None:
    """A piece worth looking at first: the most shared *word start* of 4+ letters (like
    ``" book"``), else the most shared piece of all.

    Short pieces (``" a"``, ``"ers"``) are in hundreds of words, but a stem tells the story
    better: ``" book"`` starts bookkeeping, bookshelf, booking...
    """
    stems = [p.id for p in pieces if p.text[:1] == " " and p.text[1:].isalpha() and len(p.text) > 4]
    best = most_shared(stems, index)
    if best is not None and index.words_with(best):
        return best
    return most_shared([p.id for p in pieces], index)


def word_splits(encoding: tiktoken.Encoding, words: Sequence[str]) -> list[list[TokenPiece]]:
    """Each word, written after a space as inside a sentence, as its list of pieces.

    >>> from minillm.tokenizers import load_encoding
    >>> [[p.text for p in w] for w in word_splits(load_encoding("cl100k_base"), ["bookkeeping"])]
    [[' book', 'keeping']]
    """
    tokenizer = TiktokenTokenizer(encoding)
    return [token_pieces(tokenizer, encoding.encode_ordinary(" " + w)) for w in words]


#: Bins of "words per piece": (label, lowest, highest).
SHARING_BINS = (
    ("1", 1, 1),
    ("2", 2, 2),
    ("3–4", 3, 4),
    ("5–9", 5, 9),
    ("10–99", 10, 99),
    ("100–999", 100, 999),
    ("1,000+", 1_000, None),
)


def _bin_label(k: int) -> str:
    for label, low, high in SHARING_BINS:
        if k >= low and (high is None or k <= high):
            return label
    raise ValueError(f"a piece is in at least one word, not {k}")


def sharing_distribution(index: PieceIndex, encoding_name: str = "cl100k_base") -> pd.DataFrame:
    """How many pieces are in 1 word, 2 words, 3–4 words, ...: for the BPE and a word vocabulary.

    Columns: ``vocabulary``, ``words per piece`` (bin label), ``bin`` (its order), ``pieces``.
    A word vocabulary of the same words has one piece per word, each in exactly 1 word.
    Bins with no pieces are left out (the chart uses a log scale).
    """
    counts = Counter(_bin_label(len(words)) for words in index.words_by_piece.values())
    rows = [
        (f"{encoding_name} pieces", label, order, counts[label])
        for order, (label, _, _) in enumerate(SHARING_BINS)
        if counts[label]
    ]
    rows.append((f"word vocabulary ({index.n_words:,} words)", "1", 0, index.n_words))
    return pd.DataFrame(rows, columns=["vocabulary", "words per piece", "bin", "pieces"])


@dataclass(frozen=True)
class SharingSummary:
    n_words: int
    n_pieces: int  # distinct pieces the words use
    shared_pieces: int  # pieces found in 2 or more words
    mean_words_per_piece: float


def sharing_summary(index: PieceIndex) -> SharingSummary:
    sizes = [len(words) for words in index.words_by_piece.values()]
    return SharingSummary(
        n_words=index.n_words,
        n_pieces=len(sizes),
        shared_pieces=sum(1 for s in sizes if s > 1),
        mean_words_per_piece=sum(sizes) / len(sizes) if sizes else 0.0,
    )
