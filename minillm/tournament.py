"""Which tokens make the best model? The same model, the same text, the same training; only
the tokens differ. Each is scored on text it never saw, in bits per character.

    result = run_tournament(train_lines, valid_lines, TournamentSettings())
    for entrant in result.entrants:
        print(entrant.name, entrant.heldout_bits)

Every entrant gets the same model (width, heads, layers, block size), the same number of
optimizer steps on the same number of windows per step, and the same seed. What differs is
how the text is cut:

- **words**: the notebook's vocabulary, fitted on the training lines only, plus one UNK id
  for every word it never saw;
- **characters**: every character of the training lines, plus UNK;
- **bytes**: the 256 byte values of UTF-8 (nothing is ever unknown);
- **BPE-n**: a byte-level BPE trained on the training lines with n merges;
- **cl100k_base**: GPT-4's tokenizer, its ids renumbered to the ones that occur in this text
  (so its embedding table has a row per token used, not 100,277 rows).

**The fair score.** A model pays, for each held-out token, -ln of the probability it gave that
token (including the end of each line). Bits per character divide the total by the held-out
characters (each line and its newline, `minillm.heldout.characters_in`) and by ln 2, so models
that cut the text differently are scored on the same characters. A word or character model
cannot write a unit it never saw, so for each unknown one it pays the UNK id's probability
**plus spelling it out letter by letter** at a uniform rate over the training characters and
one end-of-word sign: ``(letters + 1) x ln(C + 1)`` nats, C the distinct training characters
(an unknown character is spelled as its UTF-8 bytes, ``bytes x ln 256``). Worked example: the
training text has C = 19 distinct characters; the held-out word "zorp" is unknown; the model
gave UNK a probability of 0.05 there. The word costs -ln 0.05 + 5 x ln 20 = 3.00 + 14.98 =
17.98 nats (see `spelling_nats`). Without the spelling the word model would be scored on
fewer characters than the others: its blind spot would be a hole, not a cost.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from minillm.bpe import train_bpe
from minillm.data import Dataset
from minillm.heldout import characters_in
from minillm.model import ModelConfig, build_model
from minillm.tokenizers import ByteTokenizer, TiktokenTokenizer, Tokenizer, tiktoken_tokenizer
from minillm.train import Trainer

UNK = "[UNK]"
EVAL_ROWS = 4096


@dataclass(frozen=True)
class TournamentSettings:
    """One model size and one training budget for every entrant."""

    block_size: int = 32  # tokens of context (how many characters that is depends on the tokens)
    d_model: int = 32
    n_heads: int = 2
    n_layers: int = 1
    steps: int = 300  # optimizer steps, the same for everyone
    batch_size: int = 32  # windows per step
    lr: float = 3e-3
    seed: int = 0
    bpe_merges: tuple[int, ...] = (50, 200, 1000)
    cl100k: bool = True


def spelling_nats(word: str, n_training_chars: int, known_chars: set[str] | None = None) -> float:
    """What spelling out an unknown `word` costs at a uniform rate: one of the C training
    characters or the end of the word at each step (bytes x ln 256 for a character never seen).

    >>> round(spelling_nats("zorp", 19), 2)   # 5 x ln 20
    14.98
    """
    known = known_chars if known_chars is not None else None
    per_letter = math.log(n_training_chars + 1)
    total = per_letter  # the end of the word
    for ch in word:
        if known is not None and ch not in known:
            total += len(ch.encode("utf-8")) * math.log(256)
        else:
            total += per_letter
    return total


class UnitTokenizer(Tokenizer):
    """Words or characters of the training lines, with one UNK id for anything else."""

    def __init__(self, units: Sequence[str], kind: str):
        self.kind = kind  # "word" or "character"
        self.vocab = [*units, UNK]
        self.stoi = {u: i for i, u in enumerate(units)}
        self.unknown_id = len(units)
        self.display_name = f"{kind}s"

    @classmethod
    def fit(cls, lines: Sequence[str], kind: str) -> "UnitTokenizer":
        units = sorted(set(" ".join(lines).split())) if kind == "word" else sorted(set("".join(lines)))
        return cls(units, kind)

    def split(self, text: str) -> list[str]:
        return text.split() if self.kind == "word" else list(text)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode_known(self, text: str):
        from minillm.tokenizers import Encoded

        units = self.split(text)
        return Encoded([self.stoi.get(u, self.unknown_id) for u in units],
                       [u for u in units if u not in self.stoi])

    def decode(self, ids) -> str:
        return (" " if self.kind == "word" else "").join(self.vocab[i] for i in ids)

    def piece_bytes(self, token_id: int) -> bytes:
        return self.vocab[token_id].encode("utf-8")

    def piece(self, token_id: int) -> str:
        return self.vocab[token_id]


class RemappedTokenizer(Tokenizer):
    """A big encoding (cl100k_base) with its ids renumbered to the tokens that occur in some
    lines: the same cuts, a vocabulary (and an embedding table) only as large as needed.

    >>> enc = tiktoken_tokenizer("cl100k_base")
    >>> small = RemappedTokenizer(enc, ["the cat sat", "the dog"])
    >>> small.decode(small.encode("the cat")) == "the cat", small.vocab_size
    (True, 4)
    """

    def __init__(self, base: Tokenizer, lines: Sequence[str]):
        self.base = base
        used = sorted({i for line in lines for i in base.encode(line)})
        self.to_small = {big: small for small, big in enumerate(used)}
        self.to_big = used
        self.display_name = f"{base.display_name} (its {len(used):,} tokens used here)"

    @property
    def vocab_size(self) -> int:
        return len(self.to_big)

    def encode_known(self, text: str):
        from minillm.tokenizers import Encoded

        return Encoded([self.to_small[i] for i in self.base.encode(text)], [])

    def decode(self, ids) -> str:
        return self.base.decode([self.to_big[i] for i in ids])

    def piece_bytes(self, token_id: int) -> bytes:
        return self.base.piece_bytes(self.to_big[token_id])


@dataclass
class EntrantResult:
    name: str
    vocab_size: int  # ids, PAD and EOS included
    embedding_parameters: int  # the token embedding table and the output layer
    parameters: int
    tokens_per_char: float  # on the held-out text
    context_chars: float  # characters of text that fit in the context window, on average
    seconds: float  # training time
    heldout_bits: float  # bits per character on the held-out text
    unknown_share: float = 0.0  # held-out units the vocabulary lacked (words, characters)
    unknown_bits: float = 0.0  # the part of heldout_bits paid for them
    train_loss: float = math.nan


@dataclass
class TournamentResult:
    settings: TournamentSettings
    entrants: list[EntrantResult]
    heldout_chars: int
    heldout_floor_bits: float | None = None

    def best(self) -> EntrantResult:
        return min(self.entrants, key=lambda e: e.heldout_bits)

    def verdict(self) -> str:
        """What the run showed, in one sentence computed from the results."""
        best = self.best()
        words = next((e for e in self.entrants if e.name == "words"), None)
        ranked = sorted(self.entrants, key=lambda e: e.heldout_bits)
        text = (f"On text it never saw, {best.name} did best: {best.heldout_bits:.3f} bits per "
                f"character, against {ranked[-1].heldout_bits:.3f} for {ranked[-1].name}.")
        if words is not None and words is not best:
            text += (f" Words came {ranked.index(words) + 1} of {len(ranked)} "
                     f"({words.heldout_bits:.3f}): {words.unknown_share:.0%} of the held-out words "
                     f"were unknown, and spelling them out cost {words.unknown_bits:.3f} bits "
                     "per character.")
        elif words is not None:
            text += (" Here words won: with few new words "
                     f"({words.unknown_share:.0%} unknown) a word model needs fewer, more "
                     "meaningful steps. Turn up new names or typos and see whether that holds.")
        return text


def entrant_tokenizers(train_lines: Sequence[str], valid_lines: Sequence[str],
                       settings: TournamentSettings) -> dict[str, Tokenizer]:
    """Every entrant's tokenizer, fitted on the training lines only (cl100k is fixed)."""
    text = "\n".join(train_lines)
    out: dict[str, Tokenizer] = {
        "words": UnitTokenizer.fit(train_lines, "word"),
        "characters": UnitTokenizer.fit(train_lines, "character"),
        "bytes": ByteTokenizer(),
    }
    if settings.bpe_merges:
        result = train_bpe(text, max(settings.bpe_merges))
        for n in settings.bpe_merges:
            out[f"BPE-{n}"] = TiktokenTokenizer(result.encoding(min(n, len(result.merges))),
                                                display_name=f"BPE-{n}")
    if settings.cl100k:
        out["cl100k_base"] = RemappedTokenizer(tiktoken_tokenizer("cl100k_base"),
                                               [*train_lines, *valid_lines])
    return out


def _windows(lines: Sequence[str], tokenizer: Tokenizer, block: int) -> Dataset:
    """One window per token of every line and its end (EOS), the first token included (its
    window is all PAD): every token of the text is predicted, so every character is scored."""
    pad, eos = tokenizer.vocab_size, tokenizer.vocab_size + 1
    X, Y, sentences = [], [], []
    for line in lines:
        ids = tokenizer.encode_known(line).ids + [eos]
        sentences.append(ids)
        for i in range(len(ids)):
            context = ids[max(0, i - block) : i]
            X.append([pad] * (block - len(context)) + context)
            Y.append(ids[i])
    return Dataset(tokenizer, block, True, torch.tensor(X, dtype=torch.long),
                   torch.tensor(Y, dtype=torch.long), sentences)


def _heldout_nats(model, data: Dataset) -> torch.Tensor:
    """-ln p of every held-out token, each with its full window of context."""
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(data), EVAL_ROWS):
            logits = model.last_logits(data.X[start : start + EVAL_ROWS])
            out.append(F.cross_entropy(logits, data.Y[start : start + EVAL_ROWS], reduction="none"))
    return torch.cat(out) if out else torch.zeros(0)


def _unknown_cost(tokenizer, valid_lines, train_chars: set[str]) -> tuple[float, int, int]:
    """(spelling nats, unknown units, all units) of the held-out lines for a UNK tokenizer."""
    if not isinstance(tokenizer, UnitTokenizer):
        return 0.0, 0, 0
    nats, unknown, units = 0.0, 0, 0
    for line in valid_lines:
        for unit in tokenizer.split(line):
            units += 1
            if unit not in tokenizer.stoi:
                unknown += 1
                if tokenizer.kind == "word":
                    nats += spelling_nats(unit, len(train_chars), train_chars)
                else:
                    nats += len(unit.encode("utf-8")) * math.log(256)
    return nats, unknown, units


def play(name: str, tokenizer: Tokenizer, train_lines, valid_lines,
         settings: TournamentSettings, on_step: Callable | None = None) -> EntrantResult:
    """Train one entrant and score it on the held-out lines."""
    s = settings
    train = _windows(train_lines, tokenizer, s.block_size)
    valid = _windows(valid_lines, tokenizer, s.block_size)
    config = ModelConfig(vocab_size=train.vocab_size, block_size=s.block_size, d_model=s.d_model,
                         n_heads=s.n_heads, causal=True, loss_on="every", n_layers=s.n_layers)
    model = build_model(config, s.seed)
    trainer = Trainer(model, train, lr=s.lr, epochs=s.steps, batch_size=s.batch_size, seed=s.seed)
    start = time.thread_time()
    trainer.run(on_step=on_step)
    seconds = time.thread_time() - start
    nats = _heldout_nats(model, valid)
    train_chars = set("".join(train_lines))
    spelled, unknown, units = _unknown_cost(tokenizer, valid_lines, train_chars)
    chars = characters_in(valid_lines)
    ln2 = math.log(2)
    V, d = config.vocab_size, s.d_model
    tokens = len(valid)
    return EntrantResult(
        name=name,
        vocab_size=V,
        embedding_parameters=2 * V * d + V,
        parameters=model.num_parameters(),
        tokens_per_char=tokens / chars,
        context_chars=s.block_size * chars / tokens,
        seconds=seconds,
        heldout_bits=(float(nats.sum()) + spelled) / chars / ln2,
        unknown_share=unknown / units if units else 0.0,
        unknown_bits=spelled / chars / ln2,
        train_loss=trainer.history[-1] if trainer.history else math.nan,
    )


def run_tournament(train_lines: Sequence[str], valid_lines: Sequence[str],
                   settings: TournamentSettings = TournamentSettings(),
                   on_progress: Callable[[str, int, int], None] | None = None,
                   heldout_floor_bits: float | None = None) -> TournamentResult:
    """Every entrant, in turn; `on_progress(name, step, steps)` after each step."""
    if not train_lines or not valid_lines:
        raise ValueError("the tournament needs training lines and held-out lines")
    entrants = []
    for name, tokenizer in entrant_tokenizers(train_lines, valid_lines, settings).items():
        step = (lambda t, name=name: on_progress(name, t.epoch, t.epochs)) if on_progress else None
        entrants.append(play(name, tokenizer, train_lines, valid_lines, settings, step))
    return TournamentResult(settings, entrants, characters_in(valid_lines), heldout_floor_bits)
