"""Byte-level BPE training, with the merge history kept so a lesson can step through it.

Byte pair encoding (BPE) builds a vocabulary by repetition of one simple step:

    find the pair of neighbouring tokens that occurs most often, and glue it into a new token.

It starts from the 256 possible byte values, so *any* text can be encoded (an emoji is just
four bytes), and every merge adds one token made of two older ones. A worked example (the one
on Wikipedia and in minbpe), on the text ``"aaabdaaabac"``::

    a a a b d a a a b a c        11 tokens, most common pair (a, a): 4 times
    aa a b d aa a b a c          merge 1: (a, a)   -> "aa"     (id 256)
    aa ab d aa ab a c            merge 2: (a, b)   -> "ab"     (id 257)
    aaab d aaab a c              merge 3: (aa, ab) -> "aaab"   (id 258)

(after merge 1 both (aa, a) and (a, b) occur twice: the tie rule below picks (a, b)).

Two implementations live here and must agree merge for merge:

- :func:`naive_train_bpe` is the textbook algorithm (minbpe's ``get_stats``/``merge``): after
  every merge it recounts every pair in the whole corpus. Easy to read, slow.
- :func:`train_bpe` gives the same answer much faster, with two ideas:

  1. *Deduplicate chunks.* With the GPT-4 pre-split, text is cut into word-like chunks first
     (``" the"``, ``" cat"``, ``"."``) and a merge never crosses a chunk boundary. A chunk
     that occurs 1000 times is processed once, with weight 1000.
  2. *Incremental pair counts.* It keeps ``pair -> count`` and ``pair -> positions where it
     occurs``. A merge only changes the neighbourhood of the places where the merged pair
     occurs, so only those places are visited; the best pair is found with a heap.

The result is a real :class:`tiktoken.Encoding` (:meth:`BPEResult.encoding`), so tiktoken's
fast Rust code does the encoding, for any number of merges from 0 to all of them.

Tie rule (both implementations): the pair with the highest count wins; among equal counts,
the pair with the lowest left id, then the lowest right id. Ids are ranks (bytes are 0..255,
merge number ``k`` makes id ``256 + k - 1``), so older tokens win ties.

The engine never imports streamlit: it is meant to be used from a notebook too::

    >>> result = train_bpe("aaabdaaabac", 3)
    >>> [(m.left_bytes, m.right_bytes, m.count) for m in result.merges]
    [(b'a', b'a', 4), (b'a', b'b', 2), (b'aa', b'ab', 2)]
    >>> enc = result.encoding()
    >>> [enc.decode_single_token_bytes(t) for t in enc.encode("aaabdaaabac")]
    [b'aaab', b'd', b'aaab', b'a', b'c']
"""

from __future__ import annotations

import hashlib
import heapq
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable

import regex
import tiktoken

from minillm.display import readable

if TYPE_CHECKING:  # pandas is only needed for the tables a page or notebook shows
    import pandas as pd

# The GPT-4 (cl100k_base) pre-split pattern, exactly as tiktoken defines it. It cuts text into
# chunks: contractions ("'ll"), a word with at most one leading non-letter (" cat"), runs of
# up to three digits, punctuation runs, and whitespace. Merges never cross chunk boundaries,
# which is why a BPE never learns a token like "cat." or "the cat".
CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
# Without the pre-split the whole text is one chunk: this pattern matches everything at once.
WHOLE_TEXT_PATTERN = r"[\s\S]+"

_CL100K_REGEX = regex.compile(CL100K_PATTERN)

# How many tiktoken encodings (one per number of merges) a BPEResult keeps for a slider.
ENCODING_CACHE_SIZE = 32

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Merge:
    """One step of BPE training: ``left`` and ``right`` were glued into a new token.

    ``rank`` is both the merge's priority and the new token's id: the first merge has rank 256
    (ids 0..255 are the single bytes), the second 257, and so on. ``count`` is how often the
    pair occurred in the training text when it was chosen (overlapping occurrences counted,
    as minbpe's ``get_stats`` does: "aaa" holds the pair (a, a) twice, though only one merge
    fits).
    """

    rank: int  # the new token's id, 256 + (merge number - 1)
    left: int  # id of the left part
    right: int  # id of the right part
    left_bytes: bytes
    right_bytes: bytes
    new_bytes: bytes  # left_bytes + right_bytes
    count: int  # occurrences of the pair in the training text when it was merged

    @property
    def new_id(self) -> int:
        """The id of the token this merge creates (the same number as its rank)."""
        return self.rank


@dataclass(frozen=True)
class BPEResult:
    """What training produced: the merges in order, plus numbers for charts.

    ``token_counts[k]`` is the length of the training text in tokens after the first ``k``
    merges (``token_counts[0]`` is its length in bytes), so a chart of vocabulary size against
    tokens per word costs nothing extra. ``num_words`` counts whitespace-separated words.
    """

    merges: list[Merge]
    regex_split: bool
    token_counts: list[int]
    num_words: int
    num_chunks: int  # chunks after the pre-split (1 without it)
    num_unique_chunks: int
    _encodings: OrderedDict = field(
        default_factory=OrderedDict, init=False, repr=False, compare=False
    )
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    @property
    def pat_str(self) -> str:
        """The pre-split pattern the encoding uses (the one training used)."""
        return CL100K_PATTERN if self.regex_split else WHOLE_TEXT_PATTERN

    def vocab_size(self, num_merges: int | None = None) -> int:
        """256 byte tokens plus one token per merge."""
        return 256 + self._clamp(num_merges)

    def tokens_per_word(self, num_merges: int | None = None) -> float:
        """Average tokens per word of the training text after ``num_merges`` merges."""
        return self.token_counts[self._clamp(num_merges)] / max(self.num_words, 1)

    def encoding(self, num_merges: int | None = None) -> tiktoken.Encoding:
        """A real tiktoken encoding that knows the first ``num_merges`` merges (all if None).

        ``mergeable_ranks`` holds the 256 single bytes at ranks 0..255, then each merged piece
        at its rank. tiktoken encodes a chunk by repeatedly merging the neighbouring pair whose
        *concatenated bytes* have the lowest rank (and takes a chunk that is itself a token
        whole). That is a different procedure from applying the merges one by one in order
        (:func:`apply_merges`), and the two can disagree on a hand-made rank table. On ranks
        learned by BPE training we have found no text where they disagree: the tests check
        awkward strings, the training text and random texts on tiny alphabets.

        Encodings are cached per ``num_merges`` (the last few used), so a slider that steps
        through the merges only builds each one once.
        """
        k = self._clamp(num_merges)
        with self._lock:
            if k in self._encodings:
                self._encodings.move_to_end(k)
                return self._encodings[k]
        ranks = {bytes([i]): i for i in range(256)}
        for merge in self.merges[:k]:
            ranks[merge.new_bytes] = merge.rank
        encoding = tiktoken.Encoding(
            name=f"bpe-{k}", pat_str=self.pat_str, mergeable_ranks=ranks, special_tokens={}
        )
        with self._lock:
            self._encodings[k] = encoding
            self._encodings.move_to_end(k)
            while len(self._encodings) > ENCODING_CACHE_SIZE:
                self._encodings.popitem(last=False)
        return encoding

    def _clamp(self, num_merges: int | None) -> int:
        if num_merges is None:
            return len(self.merges)
        if num_merges < 0:
            raise ValueError(f"num_merges must be 0 or more, not {num_merges}")
        return min(num_merges, len(self.merges))

    def __getstate__(self):  # a lock cannot be pickled; the cache is rebuilt on demand
        state = {k: v for k, v in self.__dict__.items() if k not in ("_encodings", "_lock")}
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        object.__setattr__(self, "_encodings", OrderedDict())
        object.__setattr__(self, "_lock", threading.Lock())


# ----------------------------------------------------------------------------------------------
# Helpers shared by both trainers (minbpe's get_stats and merge)


def split_chunks(text: str, regex_split: bool = True) -> list[str]:
    """Cut text into the chunks BPE works inside.

    >>> split_chunks("I'll pay 12345 cats!")
    ['I', "'ll", ' pay', ' ', '123', '45', ' cats', '!']
    >>> split_chunks("I'll pay", regex_split=False)
    ["I'll pay"]
    """
    if not regex_split:
        return [text] if text else []
    return _CL100K_REGEX.findall(text)


def get_stats(ids: list[int], counts: dict | None = None) -> dict[tuple[int, int], int]:
    """Count each pair of neighbours in ``ids`` (adding to ``counts`` if given).

    >>> get_stats([1, 2, 3, 1, 2])
    {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    """
    counts = {} if counts is None else counts
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every occurrence of ``pair`` in ``ids``, left to right, by ``new_id``.

    >>> merge([1, 2, 3, 1, 2], (1, 2), 4)
    [4, 3, 4]
    >>> merge([7, 7, 7], (7, 7), 8)    # overlapping: the leftmost pair goes first
    [8, 7]
    """
    out = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def apply_merges(text: str, merges: Iterable[Merge], regex_split: bool = True) -> list[int]:
    """Encode text by applying the merges one by one, in order (the slow, obvious way).

    This is the definition the fast tiktoken encoding is tested against.

    >>> result = train_bpe("aaabdaaabac", 3)
    >>> apply_merges("aaabdaaabac", result.merges)
    [258, 100, 258, 97, 99]
    """
    merges = list(merges)
    ids: list[int] = []
    for chunk in split_chunks(text, regex_split):
        chunk_ids = list(chunk.encode("utf-8"))
        for m in merges:
            chunk_ids = merge(chunk_ids, (m.left, m.right), m.rank)
        ids.extend(chunk_ids)
    return ids


def _make_merge(vocab: dict[int, bytes], pair: tuple[int, int], rank: int, count: int) -> Merge:
    left, right = pair
    new_bytes = vocab[left] + vocab[right]
    return Merge(rank, left, right, vocab[left], vocab[right], new_bytes, count)


def _best_pair(stats: dict[tuple[int, int], int]) -> tuple[int, int]:
    """The tie rule: highest count, then lowest left id, then lowest right id."""
    return min(stats, key=lambda pair: (-stats[pair], pair[0], pair[1]))


def _check_new_piece(m: Merge, pieces: set[bytes]) -> None:
    """Every token must have its own bytes, or tiktoken could not hold the vocabulary.

    We have never seen BPE training make the same piece twice (randomised tests on small
    alphabets, where it would be likeliest, agree). If it ever did, tiktoken could not hold the
    vocabulary, so training stops here with a clear error instead of building a wrong encoding.
    """
    if m.new_bytes in pieces:
        raise RuntimeError(f"merge {m.rank} would make the piece {m.new_bytes!r} a second time")
    pieces.add(m.new_bytes)


def _check_num_merges(num_merges: int) -> None:
    if num_merges < 0:
        raise ValueError(f"num_merges must be 0 or more, not {num_merges}")


# ----------------------------------------------------------------------------------------------
# The naive reference


def naive_train_bpe(text: str, num_merges: int, *, regex_split: bool = True) -> BPEResult:
    """Train BPE the textbook way: recount every pair of the whole corpus after each merge.

    This is minbpe's ``RegexTokenizer.train`` (every chunk kept, none deduplicated), with the
    module's tie rule. Training stops early if no pair is left (every chunk is one token).

    >>> [m.new_bytes for m in naive_train_bpe("aaabdaaabac", 3).merges]
    [b'aa', b'ab', b'aaab']
    """
    _check_num_merges(num_merges)
    chunks = split_chunks(text, regex_split)
    ids = [list(chunk.encode("utf-8")) for chunk in chunks]
    vocab = {i: bytes([i]) for i in range(256)}
    pieces = set(vocab.values())
    merges: list[Merge] = []
    token_counts = [sum(len(chunk_ids) for chunk_ids in ids)]
    for k in range(num_merges):
        stats: dict[tuple[int, int], int] = {}
        for chunk_ids in ids:
            get_stats(chunk_ids, stats)
        if not stats:
            break
        pair = _best_pair(stats)
        rank = 256 + k
        ids = [merge(chunk_ids, pair, rank) for chunk_ids in ids]
        m = _make_merge(vocab, pair, rank, stats[pair])
        _check_new_piece(m, pieces)
        vocab[rank] = m.new_bytes
        merges.append(m)
        token_counts.append(sum(len(chunk_ids) for chunk_ids in ids))
    return BPEResult(
        merges=merges,
        regex_split=regex_split,
        token_counts=token_counts,
        num_words=len(text.split()),
        num_chunks=len(chunks),
        num_unique_chunks=len(set(chunks)),
    )


# ----------------------------------------------------------------------------------------------
# The fast trainer


def train_bpe(
    text: str,
    num_merges: int,
    *,
    regex_split: bool = True,
    progress: Progress | None = None,
) -> BPEResult:
    """Train a byte-level BPE with ``num_merges`` merges; same merges as the naive algorithm.

    ``regex_split`` pre-splits the text with the GPT-4 pattern (merges stay inside chunks);
    without it the whole text is one chunk. ``progress(done, total)`` is called after every
    merge (a page can show a progress bar); if training stops early because no pair is left,
    a last call reports ``(total, total)``.

    How it stays fast. All distinct chunks are laid end to end in flat arrays, one slot per
    token, each slot weighted by how often its chunk occurs in the text. Neighbours are linked
    (``prev``/``next``), so a merge edits the list in place. Alongside it we keep:

    - ``counts[pair]``: weighted occurrences of each neighbouring pair;
    - ``where[pair]``: the slots where the pair starts;
    - a heap of ``(-count, left, right)`` whose top is the next merge (the tie rule falls out
      of the tuple order). A count that changes is pushed again; an entry whose count no
      longer matches ``counts`` is stale and skipped when it reaches the top.

    Merging ``(a, b) -> n`` at one place turns ``x a b y`` into ``x n y``: the pairs
    ``(x, a)``, ``(a, b)``, ``(b, y)`` lose one occurrence, ``(x, n)`` and ``(n, y)`` gain one.
    That is all that changes, so each merge costs time in proportion to how often the pair
    occurs, not to the size of the corpus.

    >>> result = train_bpe("aaabdaaabac", 10)   # only 7 merges are possible
    >>> [m.new_bytes for m in result.merges]
    [b'aa', b'ab', b'aaab', b'ac', b'daaab', b'aaabdaaab', b'aaabdaaabac']
    >>> result.token_counts
    [11, 9, 7, 5, 4, 3, 2, 1]
    """
    _check_num_merges(num_merges)
    chunks = split_chunks(text, regex_split)
    chunk_counts = Counter(chunks)

    # Flat token arrays: tokens[i], its weight, and links to its neighbours (-1: chunk edge).
    tokens: list[int] = []
    weight: list[int] = []
    for chunk, count in chunk_counts.items():
        data = chunk.encode("utf-8")
        tokens.extend(data)
        weight.extend([count] * len(data))
    n = len(tokens)
    nxt = list(range(1, n + 1))
    prev = list(range(-1, n - 1))
    start = 0
    for chunk in chunk_counts:  # cut the links at chunk edges
        end = start + len(chunk.encode("utf-8"))
        prev[start] = -1
        nxt[end - 1] = -1
        start = end

    counts: dict[tuple[int, int], int] = {}
    where: dict[tuple[int, int], set[int]] = {}
    for i in range(n):
        j = nxt[i]
        if j != -1:
            pair = (tokens[i], tokens[j])
            counts[pair] = counts.get(pair, 0) + weight[i]
            where.setdefault(pair, set()).add(i)
    heap = [(-count, a, b) for (a, b), count in counts.items()]
    heapq.heapify(heap)

    vocab = {i: bytes([i]) for i in range(256)}
    merges: list[Merge] = []
    pieces = set(vocab.values())  # every token's bytes, to catch a duplicate piece
    num_tokens = sum(weight)  # the text's length in tokens (bytes, to begin with)
    token_counts = [num_tokens]

    def remove(old: tuple[int, int], i: int, w: int) -> None:
        if old == pair:  # "a a a" merging (a, a): the merged pair is dropped whole below
            return
        counts[old] -= w
        where[old].discard(i)
        changed.add(old)

    def add(new: tuple[int, int], i: int, w: int) -> None:
        counts[new] = counts.get(new, 0) + w
        where.setdefault(new, set()).add(i)
        changed.add(new)

    for k in range(num_merges):
        # The next merge: the top of the heap, once stale entries are skipped.
        while heap:
            neg_count, a, b = heap[0]
            if counts.get((a, b)) == -neg_count:
                break
            heapq.heappop(heap)
        else:
            break  # no pair left: every chunk is a single token
        heapq.heappop(heap)
        pair, rank = (a, b), 256 + k
        m = _make_merge(vocab, pair, rank, -neg_count)
        _check_new_piece(m, pieces)
        vocab[rank] = m.new_bytes
        merges.append(m)

        changed: set[tuple[int, int]] = set()
        places = where.pop(pair)
        # Left to right matters only when a pair overlaps itself ("aaa" -> "aa a").
        for i in sorted(places) if a == b else places:
            j = nxt[i]
            if tokens[i] != a or j == -1 or tokens[j] != b:
                continue  # already consumed by an overlapping merge of this same pair
            w = weight[i]
            x, y = prev[i], nxt[j]
            if x != -1:  # (x, a) becomes (x, n)
                remove((tokens[x], a), x, w)
                add((tokens[x], rank), x, w)
            if y != -1:  # (b, y) becomes (n, y)
                remove((b, tokens[y]), j, w)
                add((rank, tokens[y]), i, w)
            tokens[i] = rank
            tokens[j] = -1  # slot j is gone
            nxt[i] = y
            if y != -1:
                prev[y] = i
            num_tokens -= w
        token_counts.append(num_tokens)
        del counts[pair]
        changed.discard(pair)
        for p in changed:
            c = counts[p]
            if c > 0:
                heapq.heappush(heap, (-c, p[0], p[1]))
            else:
                del counts[p]
                del where[p]
        if progress is not None:
            progress(k + 1, num_merges)

    if progress is not None and len(merges) < num_merges:
        progress(num_merges, num_merges)
    return BPEResult(
        merges=merges,
        regex_split=regex_split,
        token_counts=token_counts,
        num_words=len(text.split()),
        num_chunks=len(chunks),
        num_unique_chunks=len(chunk_counts),
    )


# ----------------------------------------------------------------------------------------------
# Tables for a page or a notebook

def readable_piece(piece: bytes) -> str:
    """A token's bytes as text a person can read (`minillm.display.readable`: one symbol per
    whitespace character, bytes of a split character in hex).

    >>> readable_piece(b" the"), readable_piece("👋".encode()[:2]), readable_piece(b"a\\n\\t")
    ('␣the', '⟨F0 9F⟩', 'a↵→')
    """
    return readable(piece)


def merges_table(result: BPEResult, num_merges: int | None = None) -> "pd.DataFrame":
    """The first ``num_merges`` merges (all if None), one row each, pieces made readable.

    Columns: ``merge`` (1, 2, ...), ``new id``, ``left``, ``right``, ``new piece``, ``count``.
    """
    import pandas as pd

    merges = result.merges[: result._clamp(num_merges)]
    readable = {i: readable_piece(bytes([i])) for i in range(256)}  # each piece made once
    for m in merges:
        readable[m.rank] = readable_piece(m.new_bytes)
    return pd.DataFrame(
        {
            "merge": [m.rank - 255 for m in merges],
            "new id": [m.rank for m in merges],
            "left": [readable[m.left] for m in merges],
            "right": [readable[m.right] for m in merges],
            "new piece": [readable[m.rank] for m in merges],
            "count": [m.count for m in merges],
        }
    )


def vocabulary_curve(
    result: BPEResult, max_points: int = 400, also: Iterable[int] = ()
) -> "pd.DataFrame":
    """Vocabulary size against tokens per word of the training text, one row per step shown.

    Columns: ``merges``, ``vocabulary size`` (256 + merges), ``tokens``, ``tokens per word``.
    With many merges only about ``max_points`` evenly spaced steps are kept (always the first
    and the last, and the steps in ``also``), which is plenty for a line and keeps a chart small.

    >>> vocabulary_curve(train_bpe("aaabdaaabac", 7), max_points=3, also=[2])["tokens"].tolist()
    [11, 7, 5, 2, 1]
    """
    import pandas as pd

    last = len(result.merges)
    stride = max(1, -(-last // max_points))  # ceiling division
    steps = sorted(set(range(0, last + 1, stride)) | {last} | {result._clamp(k) for k in also})
    words = max(result.num_words, 1)
    return pd.DataFrame(
        {
            "merges": steps,
            "vocabulary size": [256 + k for k in steps],
            "tokens": [result.token_counts[k] for k in steps],
            "tokens per word": [result.token_counts[k] / words for k in steps],
        }
    )


def fingerprint(encoding: tiktoken.Encoding) -> str:
    """A short digest of what an encoding does: its split pattern and every piece with its rank.

    Two encodings with the same fingerprint cut every text the same way, whatever their
    names: a cache shared by a class must key on this, not on a name such as "bpe-200", which
    two students' BPEs trained on different texts both have.

    >>> a = train_bpe("aaab", 1).encoding(1)
    >>> fingerprint(a) == fingerprint(train_bpe("aaab", 1).encoding(1))
    True
    >>> fingerprint(a) == fingerprint(train_bpe("abbb", 1).encoding(1))
    False
    """
    digest = hashlib.sha256(encoding._pat_str.encode("utf-8"))
    for piece, rank in sorted(encoding._mergeable_ranks.items(), key=lambda kv: kv[1]):
        digest.update(rank.to_bytes(4, "big") + len(piece).to_bytes(2, "big") + piece)
    return digest.hexdigest()[:32]
