"""Generating text: ask the model for the next token again and again.

Each step the model gives a probability to every id. We then pick one:

- greedy: always the most likely one;
- sampling: draw at random by probability (the notebook's `torch.multinomial`), after
  dividing the scores by a temperature (below 1: bolder favourites; above 1: flatter, wilder)
  and, with top-k, keeping only the k most likely.

Generation stops at EOS (the model says "the sentence is over"), at PAD (as the notebook
does), or after `max_new_tokens`. Unlike the notebook, prompt words the vocabulary does not
know are reported, not silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F

from minillm.data import Dataset
from minillm.model import MiniTransformer
from minillm.tokenizers import WordTokenizer


class Candidate(NamedTuple):
    """One token the model weighed: its id and the probability it gave it.

    Known by its id, not its text: in a byte-level BPE several tokens hold parts of a
    character and read the same ("\ufffd"), yet they are different tokens.
    """

    token_id: int
    probability: float


@dataclass
class Step:
    """One generated token, and the candidates the model weighed for that position."""

    token_id: int
    token: str  # its readable text (`Dataset.label`), for a reader: the id is what counts
    probability: float
    candidates: list[Candidate]  # the top candidates, most likely first


@dataclass
class Generation:
    prompt: str
    text: str  # prompt + continuation, readable
    continuation: str
    steps: list[Step] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # prompt parts the vocabulary lacks
    stopped: str = "length"  # "eos", "pad" or "length"


def _context(ids: list[int], dataset: Dataset) -> torch.Tensor:
    ids = ids[-dataset.block_size :]
    return torch.tensor([[dataset.pad_id] * (dataset.block_size - len(ids)) + ids])


def next_token_probs(model: MiniTransformer, dataset: Dataset, ids: list[int], temperature=1.0):
    """Probabilities of every id coming next after `ids` (the last block_size of them)."""
    model.eval()
    with torch.no_grad():
        logits = model.last_logits(_context(ids, dataset))[0]
    return F.softmax(logits / temperature, dim=-1)


def generate(
    model: MiniTransformer,
    dataset: Dataset,
    prompt: str,
    max_new_tokens: int = 15,
    temperature: float = 1.0,
    top_k: int | None = None,
    greedy: bool = False,
    seed: int | None = None,
    show_top: int = 5,
) -> Generation:
    """Continue `prompt`. Same seed, same settings: same text."""
    if max_new_tokens < 0:
        raise ValueError("max_new_tokens must be 0 or more")
    if not greedy and not temperature > 0:
        raise ValueError("temperature must be above 0 (use greedy for 'always the top choice')")
    if top_k is not None and top_k < 1:
        raise ValueError("top-k must be at least 1")
    tokenizer = dataset.tokenizer
    encoded = tokenizer.encode_known(prompt)
    ids = list(encoded.ids)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    steps, new_ids, stopped = [], [], "length"
    for _ in range(max_new_tokens):
        probs = next_token_probs(model, dataset, ids, 1.0 if greedy else temperature)
        if top_k is not None and top_k < len(probs):
            kth = torch.topk(probs, top_k).values[-1]
            probs = torch.where(probs >= kth, probs, torch.zeros_like(probs))
            probs = probs / probs.sum()
        if greedy:
            next_id = int(torch.argmax(probs))
        else:
            next_id = int(torch.multinomial(probs, 1, generator=generator))
        top = torch.topk(probs, min(show_top, len(probs)))
        candidates = [Candidate(int(i), float(p)) for p, i in zip(top.values, top.indices)]
        steps.append(Step(next_id, dataset.label(next_id), float(probs[next_id]), candidates))
        if next_id == dataset.eos_id:
            stopped = "eos"
            break
        if next_id == dataset.pad_id:
            stopped = "pad"
            break
        ids.append(next_id)
        new_ids.append(next_id)
    continuation = tokenizer.decode(new_ids)
    if isinstance(tokenizer, WordTokenizer):
        text = " ".join(part for part in (prompt.strip(), continuation) if part)
    else:
        text = prompt + continuation
    return Generation(prompt, text, continuation, steps, list(encoded.unknown), stopped)


def copied_spans(generated: list[int], sentences: list[list[int]], min_len: int = 3):
    """Where the generated ids repeat the corpus word for word.

    Returns (start, end) spans of `generated`, each the longest run starting there that also
    appears in one training sentence, keeping those of at least `min_len` tokens.

    >>> copied_spans([1, 2, 3, 9, 4], [[0, 1, 2, 3, 4]], min_len=2)
    [(0, 3)]
    """
    grams: set[tuple[int, ...]] = set()
    for s in sentences:
        for i in range(len(s)):
            for j in range(i + 1, len(s) + 1):
                grams.add(tuple(s[i:j]))
    return greedy_runs(len(generated), lambda i, j: tuple(generated[i:j]) in grams, min_len)


def greedy_runs(n: int, copied, min_len: int) -> list[tuple[int, int]]:
    """The walk both copy finders share: from each position take the longest run [i, j) with
    ``copied(i, j)`` true; keep it and jump past it if it has at least `min_len` items.

    >>> greedy_runs(5, lambda i, j: j <= 3, min_len=2)
    [(0, 3)]
    """
    spans, i = [], 0
    while i < n:
        j = i
        while j < n and copied(i, j + 1):
            j += 1
        if j - i >= min_len:
            spans.append((i, j))
            i = j
        else:
            i += 1
    return spans
