"""Benchmark: the incremental BPE trainer against the naive recount-every-merge algorithm.

Builds about 1 MB of English-like text offline and deterministically (words from wordfreq's
top 20,000, drawn with Zipf weights 1/rank by ``random.Random(0)``, strung into sentences),
trains the same number of merges (100) with :func:`minillm.bpe.train_bpe` and
:func:`minillm.bpe.naive_train_bpe` in this one process, checks the merges are identical and
prints both times and the ratio. The goal (DESIGN.md) is at least 20x.

Run from the repo root:  python bench/bpe_speed.py
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wordfreq import top_n_list  # noqa: E402

from minillm.bpe import merge, naive_train_bpe, split_chunks, train_bpe  # noqa: E402

TARGET_BYTES = 1_000_000
NUM_MERGES = 100  # the naive trainer is slow a merge on 1 MB: enough merges for a ratio
GOAL_RATIO = 20.0


def build_corpus(target_bytes: int = TARGET_BYTES, seed: int = 0) -> str:
    """About ``target_bytes`` of sentences made of frequent English words, Zipf-weighted."""
    rng = random.Random(seed)
    words = top_n_list("en", 20_000)
    cum_weights = list(itertools.accumulate(1.0 / rank for rank in range(1, len(words) + 1)))
    sentences: list[str] = []
    size = 0
    while size < target_bytes:
        sentence_words = rng.choices(words, cum_weights=cum_weights, k=rng.randint(4, 18))
        if rng.random() < 0.3:  # a comma somewhere in the middle
            cut = rng.randint(1, len(sentence_words) - 1)
            sentence_words[cut - 1] += ","
        sentence = " ".join(sentence_words)
        sentence = sentence[0].upper() + sentence[1:] + rng.choice(".....?!")
        sentences.append(sentence)
        # a new paragraph now and then, otherwise a space between sentences
        sentences.append("\n\n" if rng.random() < 0.1 else " ")
        size += len(sentence.encode("utf-8")) + 1
    return "".join(sentences)


def naive_on_distinct_chunks(text: str, num_merges: int) -> list[tuple[int, int, int]]:
    """The naive recount, but over distinct chunks weighted by their counts (no other trick).

    Not the reference: it only shows how much of the speed-up comes from deduplication alone.
    Returns (left, right, count) per merge.
    """
    chunk_counts = Counter(split_chunks(text))
    ids = [list(chunk.encode("utf-8")) for chunk in chunk_counts]
    weights = list(chunk_counts.values())
    merges = []
    for k in range(num_merges):
        stats: dict[tuple[int, int], int] = {}
        for chunk_ids, w in zip(ids, weights):
            for pair in zip(chunk_ids, chunk_ids[1:]):
                stats[pair] = stats.get(pair, 0) + w
        if not stats:
            break
        pair = min(stats, key=lambda p: (-stats[p], p))  # the same tie rule
        ids = [merge(chunk_ids, pair, 256 + k) for chunk_ids in ids]
        merges.append((*pair, stats[pair]))
    return merges


def main() -> None:
    text = build_corpus()
    print(f"corpus: {len(text.encode('utf-8')):,} bytes, {len(text.split()):,} words; "
          f"{NUM_MERGES} merges, GPT-4 pre-split")

    start = time.perf_counter()
    fast = train_bpe(text, NUM_MERGES)
    fast_seconds = time.perf_counter() - start
    print(f"  fast (incremental counts, chunks deduplicated): {fast_seconds:.2f} s")

    start = time.perf_counter()
    naive = naive_train_bpe(text, NUM_MERGES)
    naive_seconds = time.perf_counter() - start
    print(f"  naive (minbpe: recount every pair after each merge): {naive_seconds:.2f} s")

    start = time.perf_counter()
    distinct = naive_on_distinct_chunks(text, NUM_MERGES)
    distinct_seconds = time.perf_counter() - start
    print(f"  for scale, the naive recount over distinct chunks only: {distinct_seconds:.2f} s "
          f"(deduplication alone {naive_seconds / distinct_seconds:.0f}x; incremental counts "
          f"{distinct_seconds / fast_seconds:.1f}x on top)")

    identical = fast.merges == naive.merges and fast.token_counts == naive.token_counts
    identical = identical and distinct == [(m.left, m.right, m.count) for m in fast.merges]
    ratio = naive_seconds / fast_seconds
    pieces = [m.new_bytes.decode("utf-8", errors="replace") for m in fast.merges[:12]]
    print(f"  first merges: {pieces}")
    print(f"bpe_speed: fast {fast_seconds:.2f} s, naive {naive_seconds:.1f} s, "
          f"ratio {ratio:.1f}x, merges identical: {identical}")
    if not identical:
        raise SystemExit("FAIL: the two trainers made different merges")
    if ratio < GOAL_RATIO:
        raise SystemExit(f"FAIL: ratio {ratio:.1f}x is below the goal of {GOAL_RATIO:.0f}x")


if __name__ == "__main__":
    main()
