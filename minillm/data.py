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

    def windows_table(self) -> list[dict]:
        """One row per pair, for display: the context as labels and the next token."""
        return [
            {"context": " ".join(self.label(i) for i in x), "next": self.label(int(y))}
            for x, y in zip(self.X.tolist(), self.Y.tolist())
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


def loss_floor(dataset: Dataset, objective: str = "last") -> float:
    """The lowest average cross-entropy any model can reach on this dataset and objective."""
    return conditional_entropy(visible_pairs(dataset, objective))


def ambiguous_contexts(dataset: Dataset, objective: str = "last") -> list[dict]:
    """Contexts followed by more than one token: the reason the floor is above zero."""
    by_context: dict[tuple[int, ...], Counter] = defaultdict(Counter)
    for context, target in visible_pairs(dataset, objective):
        by_context[context][target] += 1
    rows = []
    for context, counts in by_context.items():
        if len(counts) > 1:
            m = sum(counts.values())
            rows.append(
                {
                    "context": " ".join(dataset.label(i) for i in context),
                    "next tokens seen": ", ".join(
                        f"{dataset.label(t)} ({c})" for t, c in counts.most_common()
                    ),
                    "times": m,
                    "entropy (nats)": -sum(c / m * math.log(c / m) for c in counts.values()),
                }
            )
    return sorted(rows, key=lambda r: -r["times"])
