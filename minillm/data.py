"""The dataset a language model learns from, and the best loss any model could reach on it.

The notebook turns each sentence into (context window -> next token) pairs. With
``block_size = 5`` the sentence "the cat sat on the mat" gives

    PAD PAD PAD PAD the  -> cat
    PAD PAD PAD the cat  -> sat
    ...
    the cat sat on  the  -> mat

The window is padded on the left with a PAD id (``tokenizer.vocab_size``, as in the notebook).
With ``eos=True`` every sentence also ends with an EOS ("end of sentence") id, so the model
sees "... the mat -> EOS" and learns when to stop.

The loss floor: if the same context is followed by different tokens in the data ("the" is
followed by cat, mat, dog, ...), no model can be sure what comes next. The smallest possible
average cross-entropy is the conditional entropy of the next token given what the model can
see, which we compute exactly by counting. A model at the floor has learned all there is.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import torch

from minillm.tokenizers import Tokenizer

IGNORE = -100  # target value cross-entropy skips (torch's default ignore_index)


@dataclass
class Dataset:
    """(context window -> next token) pairs built from a corpus, as in the notebook."""

    tokenizer: Tokenizer
    block_size: int
    eos: bool
    X: torch.Tensor  # (N, block_size) token ids, left-padded with pad_id
    Y: torch.Tensor  # (N,) the next token after each window
    sentences: list[list[int]] = field(repr=False)  # each sentence's ids (EOS included)

    @property
    def pad_id(self) -> int:
        return self.tokenizer.vocab_size

    @property
    def eos_id(self) -> int | None:
        return self.tokenizer.vocab_size + 1 if self.eos else None

    @property
    def vocab_size(self) -> int:
        """Ids the model must handle: the tokenizer's, plus PAD, plus EOS when used."""
        return self.tokenizer.vocab_size + 1 + int(self.eos)

    def __len__(self) -> int:
        return len(self.Y)

    def label(self, token_id: int) -> str:
        """Readable name of an id: the token's text, or PAD / EOS."""
        if token_id == self.pad_id:
            return "PAD"
        if token_id == self.eos_id:
            return "EOS"
        return self.tokenizer.piece(token_id)

    def every_position_targets(self) -> torch.Tensor:
        """(N, block_size) targets for the every-position objective (GPT style).

        Position t predicts the token after it: window[t + 1], and the last position predicts
        Y. Positions whose next token is still PAD are ignored (IGNORE).
        """
        shifted = torch.cat([self.X[:, 1:], self.Y[:, None]], dim=1)
        return shifted.masked_fill(shifted == self.pad_id, IGNORE)

    def windows_table(self, limit: int | None = None) -> list[dict]:
        """One row per pair (the first `limit`), for display: the context as labels and the
        next token."""
        X, Y = (self.X, self.Y) if limit is None else (self.X[:limit], self.Y[:limit])
        return [
            {"context": " ".join(self.label(i) for i in x), "next": self.label(int(y))}
            for x, y in zip(X.tolist(), Y.tolist())
        ]


def build_dataset(
    lines: Sequence[str], tokenizer: Tokenizer, block_size: int = 5, eos: bool = False
) -> Dataset:
    """The notebook's `build_dataset`, for any tokenizer, with an optional EOS.

    Raises `UnknownTokensError` if the tokenizer cannot encode a line (fit it on the corpus),
    and ValueError if no (context -> next) pair can be made.
    """
    if block_size < 1:
        raise ValueError("block_size must be at least 1")
    pad_id, eos_id = tokenizer.vocab_size, tokenizer.vocab_size + 1
    X, Y, sentences = [], [], []
    for line in lines:
        ids = tokenizer.encode(line) + ([eos_id] if eos else [])
        sentences.append(ids)
        for i in range(1, len(ids)):
            context = ids[max(0, i - block_size) : i]
            X.append([pad_id] * (block_size - len(context)) + context)
            Y.append(ids[i])
    if not X:
        raise ValueError("no (context -> next token) pairs: every sentence has a single token")
    return Dataset(
        tokenizer,
        block_size,
        eos,
        torch.tensor(X, dtype=torch.long),
        torch.tensor(Y, dtype=torch.long),
        sentences,
    )


def conditional_entropy(pairs: Iterable[tuple[tuple[int, ...], int]]) -> float:
    """H(next | context) in nats, from (context, next) pairs, each pair weighted equally.

    >>> round(conditional_entropy([((1,), 2), ((1,), 3), ((4,), 5)]), 4)  # 2/3 * ln 2
    0.4621
    """
    by_context: dict[tuple[int, ...], Counter] = defaultdict(Counter)
    n = 0
    for context, target in pairs:
        by_context[context][target] += 1
        n += 1
    if n == 0:
        return 0.0
    total = 0.0
    for counts in by_context.values():
        m = sum(counts.values())
        total -= sum(c * math.log(c / m) for c in counts.values())
    return total / n


def visible_pairs(dataset: Dataset, objective: str = "last"):
    """The (what the model can see, what it must predict) pairs the loss averages over.

    "last": the whole window -> Y (the notebook). "every": for each position t with a
    target, the prefix window[: t + 1] -> target (what a causally masked model sees).
    """
    if objective == "last":
        return [(tuple(x), y) for x, y in zip(dataset.X.tolist(), dataset.Y.tolist())]
    if objective == "every":
        targets = dataset.every_position_targets().tolist()
        return [
            (tuple(x[: t + 1]), target)
            for x, row in zip(dataset.X.tolist(), targets)
            for t, target in enumerate(row)
            if target != IGNORE
        ]
    raise ValueError(f"objective must be 'last' or 'every', not {objective!r}")


def context_groups(dataset: Dataset, objective: str = "last"):
    """The same grouping as `visible_pairs`, as integer ids instead of tuples.

    Returns (context id, target) tensors, one entry per scored position: two positions get
    the same context id exactly when the model sees the same thing there. "last" groups equal
    windows; "every" groups equal prefixes ``window[: t + 1]`` of the same length, built one
    position at a time (the prefix up to t is the prefix up to t - 1 plus one token), so memory
    stays a few integers per position whatever the block size, where tuples of every prefix
    would cost hundreds of MB on a large corpus.
    """
    X, Y = dataset.X, dataset.Y
    if objective not in ("last", "every"):
        raise ValueError(f"objective must be 'last' or 'every', not {objective!r}")
    targets = dataset.every_position_targets() if objective == "every" else None
    N, T = X.shape
    base = dataset.vocab_size + 1
    prefix = torch.zeros(N, dtype=torch.long)
    contexts, scored = [], []
    offset = 0
    for t in range(T):
        # One integer per (prefix so far, next token): prefix ids stay below N, so this fits.
        _, prefix = torch.unique(prefix * base + X[:, t], return_inverse=True)
        if targets is not None:
            keep = targets[:, t] != IGNORE
            contexts.append(prefix[keep] + offset)  # prefixes of different lengths differ
            scored.append(targets[keep, t])
            offset += int(prefix.max()) + 1
    if targets is None:
        return prefix, Y  # the prefix of the whole window: equal windows, equal ids
    return torch.cat(contexts), torch.cat(scored)


def loss_floor(dataset: Dataset, objective: str = "last") -> float:
    """The lowest average cross-entropy any model can reach on this dataset and objective.

    The conditional entropy of `conditional_entropy`, counted with `context_groups`.
    """
    contexts, targets = context_groups(dataset, objective)
    n = len(targets)
    if n == 0:
        return 0.0
    base = dataset.vocab_size + 1
    pair_keys, pair_counts = torch.unique(contexts * base + targets, return_counts=True)
    pair_context = pair_keys // base
    # Sum over (context, next) pairs of c * ln(c / m), m the context's count.
    totals = torch.zeros(int(contexts.max()) + 1, dtype=torch.float64)
    totals.index_add_(0, pair_context, pair_counts.double())
    c = pair_counts.double()
    return float(-(c * torch.log(c / totals[pair_context])).sum() / n)


MAX_AMBIGUOUS_ROWS = 200  # a table to read, not to scroll through: the most frequent first


def ambiguous_contexts(dataset: Dataset, objective: str = "last",
                       max_rows: int = MAX_AMBIGUOUS_ROWS) -> list[dict]:
    """Contexts followed by more than one token: the reason the floor is above zero.

    The `max_rows` most frequent ones, most frequent first (ties in the order they occur).
    """
    contexts, targets = context_groups(dataset, objective)
    if len(targets) == 0:
        return []
    base = dataset.vocab_size + 1
    pair_keys, pair_inverse, pair_counts = torch.unique(
        contexts * base + targets, return_inverse=True, return_counts=True)
    pair_first = torch.full((len(pair_keys),), len(contexts), dtype=torch.long)
    pair_first.scatter_reduce_(0, pair_inverse, torch.arange(len(contexts)), reduce="amin")
    pair_context = pair_keys // base
    ids, distinct = torch.unique(pair_context, return_counts=True)
    ambiguous = ids[distinct > 1]
    if len(ambiguous) == 0:
        return []
    totals = torch.zeros(int(contexts.max()) + 1, dtype=torch.long)
    totals.index_add_(0, pair_context, pair_counts)
    X = dataset.X
    N, T = X.shape
    if objective == "last":  # where each entry sits in the data, read row by row
        where = torch.arange(N) * T + (T - 1)
    else:
        keep = dataset.every_position_targets() != IGNORE
        where = torch.cat([keep[:, t].nonzero()[:, 0] * T + t for t in range(T)])
    first = torch.full((len(totals),), N * T, dtype=torch.long)
    first.scatter_reduce_(0, contexts, where, reduce="amin")
    order = sorted(ambiguous.tolist(), key=lambda c: (-int(totals[c]), int(first[c])))[:max_rows]
    rows = []
    for context in order:
        mask = (pair_context == context).nonzero()[:, 0]
        mask = mask[torch.argsort(pair_first[mask])]  # in the order the data first shows them
        counts = Counter(dict(zip((pair_keys[mask] % base).tolist(), pair_counts[mask].tolist())))
        m = int(totals[context])
        rows.append({
            "context": " ".join(dataset.label(i) for i in
                                X[int(first[context]) // T, : int(first[context]) % T + 1].tolist()),
            "next tokens seen": ", ".join(f"{dataset.label(t)} ({c})"
                                          for t, c in counts.most_common()),
            "times": m,
            "entropy (nats)": -sum(c / m * math.log(c / m) for c in counts.values()),
        })
    return rows
