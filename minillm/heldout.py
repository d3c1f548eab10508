"""Held-out text: lines a model never trains on, and bits per character, the fair score.

A model that goes down to a low loss on its training text may simply have memorised it.
To know whether it learned the *language*, we hide some lines before training (the
validation part) and score the model on those afterwards. `split_lines` makes that split:
seeded (the same seed always hides the same lines), disjoint (no position is in both
parts), and, when you pass where each story starts, whole stories at a time, so a hidden
story's pronouns still have their name in the same part.

Comparing models that use different tokenizers needs one more step. A word model pays its
loss per *word*, a character model per *character*: 1.5 nats a word and 0.5 nats a
character can be the same achievement. Converting both to bits per character makes them
comparable:

    bits per character = loss (nats per token) x tokens / characters / ln 2

loss x tokens is the total cost of the text in nats; dividing by the characters spreads it
over the text itself (which is the same whatever the tokenizer); dividing by ln 2 turns
nats (natural logarithms) into bits (logarithms base 2).

Which characters count: every character of every line, plus one newline that ends each
line (`characters_in`). The newline is what an EOS token stands for, so a model that
predicts EOS is scored on the same characters as the text written out as a file.

>>> split = split_lines([f"line {i}" for i in range(20)], valid_share=0.1, seed=0)
>>> len(split.train), len(split.valid), split.reason
(18, 2, '')
>>> train, valid = split  # unpacks as (train, valid)
>>> round(bits_per_character(1.5, 4, 12), 4)
0.7213
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Sequence

#: Fewer lines than this and nothing is held out: a validation part of one line says little,
#: and the model needs the rest to learn from.
MIN_LINES = 10


@dataclass(frozen=True)
class Split:
    """The two parts of a corpus, in the corpus's own order, and where each line came from.

    ``reason`` is empty when there is a validation part; otherwise it says, in words a page
    can show, why there is none. Unpacks as ``train, valid = split``.
    """

    train: tuple[str, ...]
    valid: tuple[str, ...]
    train_positions: tuple[int, ...]  # index of each training line in the original lines
    valid_positions: tuple[int, ...]  # index of each validation line in the original lines
    reason: str = ""

    def __iter__(self):
        return iter((self.train, self.valid))


def _units(n_lines: int, story_starts: Sequence[int] | None) -> list[range]:
    """The pieces that go to one side or the other: single lines, or whole stories."""
    if story_starts is None:
        return [range(i, i + 1) for i in range(n_lines)]
    starts = list(story_starts)
    if n_lines and (not starts or starts[0] != 0):
        raise ValueError("story_starts must begin with 0 (the first line starts a story)")
    if any(b <= a for a, b in zip(starts, starts[1:])) or (starts and starts[-1] >= n_lines):
        raise ValueError("story_starts must be increasing positions inside the lines")
    return [range(a, b) for a, b in zip(starts, starts[1:] + [n_lines])]


def split_lines(
    lines: Sequence[str],
    valid_share: float = 0.1,
    seed: int = 0,
    story_starts: Sequence[int] | None = None,
) -> Split:
    """Hide a seeded share of the lines (or of the stories) for validation.

    ``valid_share`` counts lines, or stories when ``story_starts`` (the position of each
    story's first line) is given; it is rounded to the nearest whole number, at least one.
    The two parts are disjoint by position, not by content: a short sentence that occurs
    twice ("she was happy .") may be in both, which is fair, since a model that learned the
    language should predict it anyway.

    >>> lines = ["a b", "c d", "e f", "g h", "i j", "k l", "m n", "o p", "q r", "s t"]
    >>> split = split_lines(lines, 0.2, seed=1, story_starts=[0, 2, 4, 6, 8])
    >>> split.valid_positions  # 0.2 x 5 stories = 1 story, held out whole: its two lines
    (2, 3)
    >>> split_lines(lines[:3]).reason
    'Only 3 lines: at least 10 are needed to hold some out, so every line is used for training.'
    """
    if not 0 <= valid_share < 1:
        raise ValueError(f"valid_share must be at least 0 and below 1, not {valid_share}")
    lines = tuple(lines)
    units = _units(len(lines), story_starts)
    everything = Split(lines, (), tuple(range(len(lines))), ())
    if len(lines) < MIN_LINES:
        return _no_validation(
            everything,
            f"Only {len(lines)} lines: at least {MIN_LINES} are needed to hold some out, "
            "so every line is used for training.",
        )
    if valid_share == 0:
        return _no_validation(
            everything, "The validation share is 0%, so every line is used for training."
        )
    if len(units) < 2:
        return _no_validation(
            everything,
            "The text is a single story, and stories are kept whole, so none can be held out.",
        )
    # Round half up, at least one unit held out, at least one left to train on.
    n_valid = min(max(1, int(valid_share * len(units) + 0.5)), len(units) - 1)
    chosen = set(random.Random(seed).sample(range(len(units)), n_valid))
    valid_positions = tuple(i for u, unit in enumerate(units) if u in chosen for i in unit)
    train_positions = tuple(i for u, unit in enumerate(units) if u not in chosen for i in unit)
    return Split(
        tuple(lines[i] for i in train_positions),
        tuple(lines[i] for i in valid_positions),
        train_positions,
        valid_positions,
    )


def _no_validation(everything: Split, reason: str) -> Split:
    return Split(everything.train, (), everything.train_positions, (), reason)


def characters_in(lines: Sequence[str]) -> int:
    """The characters bits per character are counted over: each line plus its newline.

    >>> characters_in(["the cat sat", "ok"])  # 11 + 1 and 2 + 1
    15
    """
    return sum(len(line) + 1 for line in lines)


def bits_per_character(loss_nats_per_token: float, n_tokens: int, n_characters: int) -> float:
    """loss (nats per token) x tokens / characters / ln 2.

    ``n_tokens`` is how many predictions the loss averaged over. For a fair score every
    token of the text must be predicted, including each line's first (from an empty
    context) and its EOS; leave some out and the figure flatters the model.

    A worked example, "the cat sat" and its newline (12 characters). A word model that
    pays 1.5 nats for each of its 4 predictions (the, cat, sat, EOS) spends 6 nats in all;
    a character model that pays 0.5 nats for each of its 12 (t, h, e, space, ..., EOS)
    also spends 6 nats. Both score 6 / 12 / ln 2 = 0.7213 bits per character:

    >>> round(bits_per_character(1.5, 4, 12), 4), round(bits_per_character(0.5, 12, 12), 4)
    (0.7213, 0.7213)
    """
    if n_characters <= 0:
        raise ValueError("bits per character needs at least one character")
    return loss_nats_per_token * n_tokens / n_characters / math.log(2)


def nats_per_token(bits_per_char: float, n_tokens: int, n_characters: int) -> float:
    """`bits_per_character` backwards: bits per character as a loss in nats per token.

    bits per character x ln 2 x characters / tokens. A floor known in bits per character
    (the story grammar's) can then be drawn on a loss chart, in the unit of the loss.

    >>> round(nats_per_token(0.7213475204444817, 4, 12), 12)  # the worked example above
    1.5
    """
    if n_tokens <= 0:
        raise ValueError("nats per token needs at least one token")
    return bits_per_char * math.log(2) * n_characters / n_tokens
