"""Which tokens make the best model? The same model, the same text, the same training; only
the tokens differ. Each is scored on text it never saw, in bits per character.

    corpus = story_corpus(StorySettings(seed=0, new_name_rate=0.2))    # or text_corpus(lines)
    result = run_tournament(corpus.train, corpus.valid, TournamentSettings(),
                            heldout_floor_bits=corpus.floor_bits)
    {e.name: e.heldout_bits for e in result.entrants}   # each entrant's score
    result.verdict()                                     # what the run showed, in a sentence

Every entrant gets the same model (width, heads, layers, block size), the same number of
optimizer steps on the same number of windows per step, the same learning rate and the same
seed. What differs is how the text is cut:

- **words**: the notebook's vocabulary, fitted on the training lines only, plus one UNK id
  for every word it does not know;
- **characters**: the characters of the training lines, plus UNK;
- **bytes**: the 256 byte values of UTF-8 (nothing is ever unknown);
- **BPE-n**: a byte-level BPE trained on the training lines with n merges (a small text allows
  only so many merges: once every word is one piece there is nothing left to merge, and the
  entrant is named by the merges it really has);
- **cl100k_base**: GPT-4's tokenizer, its ids renumbered to the ones that occur in this text
  (so its embedding table has a row per token used, not 100,277 rows; the cuts are GPT-4's).

A word or character seen only once in the training lines counts as unknown there too
(``min_count``): that is how the model learns how often something new comes, and so what to
bet on UNK. Without it UNK is never a target in training and the model bets almost nothing
on it.

**The fair score.** A model pays, for each held-out token, -ln of the probability it gave that
token (including the end of each line, EOS). Bits per character divide the total by the
held-out characters (each line and its newline, `minillm.heldout.characters_in`) and by ln 2,
so models that cut the text differently are scored on the same characters. A word or
character model cannot write a unit it does not know, so for each unknown one it pays the UNK
id's probability **plus spelling the unit out letter by letter** at a uniform rate over the
training characters and one end-of-word sign: ``(letters + 1) x ln(C + 1)`` nats, C the
distinct characters of the training lines (a character never seen in training is spelled as
its UTF-8 bytes, ``bytes x ln 256``; an unknown *character* is spelled that way too).

Worked example: the training text has C = 19 distinct characters; the held-out word "zorp"
is unknown; the model gave UNK a probability of 0.05 there. The word costs
-ln 0.05 + (4 + 1) x ln 20 = 2.996 + 14.979 = 17.974 nats (`unknown_word_nats`), about 26 bits,
spread over the word's characters like every other cost. Without the spelling the word model
would be scored on fewer characters than the others: its blind spot would be a hole, not a
cost.

>>> round(unknown_word_nats("zorp", 0.05, 19), 3)
17.974
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from minillm.bpe import train_bpe
from minillm.data import Dataset
from minillm.heldout import characters_in, split_lines
from minillm.model import ModelConfig, build_model
from minillm.stories import StorySettings, generate_stories
from minillm.tokenizers import (ByteTokenizer, Encoded, TiktokenTokenizer, Tokenizer,
                                tiktoken_tokenizer)
from minillm.train import Trainer

UNK = "[UNK]"
EVAL_ROWS = 4096  # held-out windows scored at once (bounds the memory of an evaluation)
TRAIN_STRIDE_PER_BLOCK = 4  # training windows every block/4 tokens (see `windows`)
LN2 = math.log(2)

#: The training budgets the page offers: optimizer steps for every entrant (CPU measured on
#: this project's 2-core machine for the default corpus and model: see bench/tournament_speed.py).
BUDGETS = {"quick": 200, "full": 600}
#: Model sizes the page offers: (d_model, heads, layers).
MODEL_SIZES = {"tiny": (16, 2, 1), "small": (32, 2, 1), "bigger": (64, 4, 1)}
STORY_SENTENCES = 6_000  # sentences of generated stories for the experiment
#: The page's default corpus: enough brand-new names (30% of names) for unknown words to matter.
DEFAULT_STORIES = StorySettings(seed=0, new_name_rate=0.3, typo_rate=0.0)
VALID_SHARE = 0.1  # share of the lines (stories) held out
SPLIT_SEED = 0
#: The entrants' kinds, in the order they are listed.
KINDS = ("words", "characters", "bytes", "bpe", "cl100k_base")


class TournamentError(ValueError):
    """The tournament cannot run on this corpus or with these settings; the message says why
    in words a page can show."""


@dataclass(frozen=True)
class TournamentSettings:
    """One model size and one training budget for every entrant."""

    block_size: int = 32  # tokens of context (how many characters that is depends on the tokens)
    d_model: int = 32
    n_heads: int = 2
    n_layers: int = 1
    steps: int = BUDGETS["quick"]  # optimizer steps, the same for everyone
    batch_size: int = 32  # windows per step
    lr: float = 1e-2
    seed: int = 0
    bpe_merges: tuple[int, ...] = (50, 200, 1000)
    cl100k: bool = True
    min_count: int = 2  # a word or character seen fewer times in training is unknown there

    #: For `minillm.budget.run_cost`, which reads a run's settings by these names.
    loss_on = "every"

    @property
    def epochs(self) -> int:
        return self.steps

    def __post_init__(self):
        try:
            ModelConfig(vocab_size=2, block_size=self.block_size, d_model=self.d_model,
                        n_heads=self.n_heads, causal=True, loss_on="every",
                        n_layers=self.n_layers)
            problems = []
        except ValueError as error:
            problems = [str(error)]
        if not 1 <= self.steps <= 10_000:
            problems.append(f"the steps must be between 1 and 10,000, not {self.steps}")
        if not 1 <= self.batch_size <= 1024:
            problems.append(f"the batch size must be between 1 and 1,024, not {self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            problems.append("the learning rate must be a positive number")
        if any(n < 0 for n in self.bpe_merges):
            problems.append("a BPE's merges must be 0 or more")
        if self.min_count < 1:
            problems.append("min_count must be at least 1")
        if problems:
            raise TournamentError("These tournament settings cannot run: "
                                  + "; ".join(problems) + ".")


# --------------------------------------------------------------------------------------------
# The corpus: training lines, held-out lines, and the floor when the text is generated


@dataclass(frozen=True)
class TournamentCorpus:
    """What the entrants learn from and are scored on.

    ``floor_bits`` is the best held-out bits per character any model can reach, when the
    text comes from the story grammar (`story_corpus`); ``floor_exact`` is False when typos
    are on (the figure is then an upper bound on the floor, see `minillm.stories`).
    """

    name: str
    train: tuple[str, ...]
    valid: tuple[str, ...]
    floor_bits: float | None = None
    floor_exact: bool = True
    #: Every line in its first order (what a Train run on the same text splits the same way).
    lines: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @property
    def digest(self) -> str:
        """A fingerprint of the text (training and held-out lines, in order): the cache key."""
        h = hashlib.sha256()
        for part in (self.train, self.valid):
            h.update("\n".join(part).encode("utf-8", "surrogatepass"))
            h.update(b"\x00")
        return h.hexdigest()


def story_corpus(stories: StorySettings = StorySettings(), n_sentences: int = STORY_SENTENCES,
                 valid_share: float = VALID_SHARE) -> TournamentCorpus:
    """Generated stories, one story a line (`Stories.by_story`: a window never crosses a
    story), a seeded share of the stories held out, and the grammar's floor for them.

    >>> corpus = story_corpus(StorySettings(seed=0), 200)
    >>> len(corpus.train), len(corpus.valid), round(corpus.floor_bits, 3)
    (40, 5, 0.296)
    """
    generated = generate_stories(stories, n_sentences)
    lines, nats = generated.by_story()
    split = split_lines(lines, valid_share, seed=SPLIT_SEED)
    if split.reason:
        raise TournamentError(split.reason)
    floor = math.fsum(nats[i] for i in split.valid_positions) / characters_in(split.valid) / LN2
    name = (f"{n_sentences:,} generated sentences (new names {stories.new_name_rate:.0%}, "
            f"typos {stories.typo_rate:.0%}, seed {stories.seed})")
    return TournamentCorpus(name, split.train, split.valid, floor, not generated.upper_bound,
                            tuple(lines))


def text_corpus(lines: Sequence[str], name: str = "your text",
                valid_share: float = VALID_SHARE) -> TournamentCorpus:
    """Any lines (a preset, pasted or uploaded text): a seeded share held out, no known floor.

    Raises `TournamentError` with a sentence when the text is too small to hold lines out.
    """
    lines = tuple(line for line in lines if line.strip())
    split = split_lines(lines, valid_share, seed=SPLIT_SEED)
    if split.reason:
        raise TournamentError(f"{split.reason} A tournament scores every model on lines it "
                              "never trained on: use generated stories, or at least 10 lines.")
    return TournamentCorpus(name, split.train, split.valid, lines=lines)


# --------------------------------------------------------------------------------------------
# The tokenizers


def spelling_nats(word: str, n_training_chars: int, known_chars: set[str] | None = None) -> float:
    """What spelling out an unknown `word` costs at a uniform rate: one of the C training
    characters or the end of the word at each step, ln(C + 1) nats each (bytes x ln 256 for a
    character never seen in training, when `known_chars` is given).

    >>> round(spelling_nats("zorp", 19), 3)   # (4 + 1) x ln 20
    14.979
    """
    per_letter = math.log(n_training_chars + 1)
    total = per_letter  # the end of the word
    for ch in word:
        if known_chars is not None and ch not in known_chars:
            total += len(ch.encode("utf-8")) * math.log(256)
        else:
            total += per_letter
    return total


def unknown_word_nats(word: str, p_unknown: float, n_training_chars: int,
                      known_chars: set[str] | None = None) -> float:
    """The charge for one unknown word: -ln of the model's bet on UNK, plus its spelling."""
    return -math.log(p_unknown) + spelling_nats(word, n_training_chars, known_chars)


class UnitTokenizer(Tokenizer):
    """Words or characters of the training lines, with one UNK id for anything else.

    >>> tok = UnitTokenizer.fit(["the cat sat", "the cat ran"], "word")  # sat, ran: once
    >>> tok.vocab, tok.encode_known("the dog sat")
    (['cat', 'the', '[UNK]'], Encoded(ids=[1, 2, 2], unknown=['dog', 'sat']))
    """

    def __init__(self, units: Sequence[str], kind: str):
        if kind not in ("word", "character"):
            raise ValueError("a unit tokenizer cuts words or characters")
        self.kind = kind
        self.unit = kind
        self.vocab = [*units, UNK]
        self.stoi = {u: i for i, u in enumerate(units)}
        self.unknown_id = len(units)
        self.display_name = f"{kind}s ({len(units):,} + UNK)"

    @classmethod
    def fit(cls, lines: Sequence[str], kind: str, min_count: int = 2) -> "UnitTokenizer":
        """The units of `lines` seen at least `min_count` times (sorted, as the notebook)."""
        counts = Counter(u for line in lines for u in cls._cut(line, kind))
        return cls(sorted(u for u, n in counts.items() if n >= min_count), kind)

    @staticmethod
    def _cut(text: str, kind: str) -> list[str]:
        return text.split() if kind == "word" else list(text)

    def split(self, text: str) -> list[str]:
        return self._cut(text, self.kind)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode_known(self, text: str) -> Encoded:
        """Every unit gets an id (UNK for an unknown one); `unknown` lists them in order."""
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

    Text with a token outside those lines cannot be encoded (ValueError): fit it on every
    line the model will read, held-out lines included.
    """

    def __init__(self, base: Tokenizer, lines: Sequence[str]):
        self.base = base
        used = sorted({i for line in lines for i in base.encode(line)})
        self.to_small = {big: small for small, big in enumerate(used)}
        self.to_big = used
        self.display_name = f"{base.display_name} (the {len(used):,} of its tokens used here)"

    @property
    def vocab_size(self) -> int:
        return len(self.to_big)

    def encode_known(self, text: str) -> Encoded:
        try:
            return Encoded([self.to_small[i] for i in self.base.encode(text)], [])
        except KeyError:
            raise ValueError("this text has a token the renumbering was not made for") from None

    def decode(self, ids) -> str:
        return self.base.decode([self.to_big[i] for i in ids])

    def piece_bytes(self, token_id: int) -> bytes:
        return self.base.piece_bytes(self.to_big[token_id])


@dataclass(frozen=True)
class Entrant:
    """One tokenizer in the tournament: its name on the page, its kind, and a note when
    something about it needs saying (a BPE with fewer merges than asked)."""

    name: str
    kind: str  # one of KINDS
    tokenizer: Tokenizer
    merges: int | None = None  # BPE merges
    note: str = ""


def entrants(train_lines: Sequence[str], valid_lines: Sequence[str],
             settings: TournamentSettings) -> list[Entrant]:
    """Every entrant, its tokenizer fitted on the training lines only (cl100k is fixed; its
    renumbering covers the held-out lines too, so every held-out token has an id).

    BPEs whose merge count the text cannot reach are cut to the merges it allows; two that
    come out the same are one entrant.
    """
    out = [Entrant("words", "words", UnitTokenizer.fit(train_lines, "word", settings.min_count)),
           Entrant("characters", "characters",
                   UnitTokenizer.fit(train_lines, "character", settings.min_count)),
           Entrant("bytes", "bytes", ByteTokenizer())]
    if settings.bpe_merges:
        asked = sorted(set(settings.bpe_merges))
        result = train_bpe("\n".join(train_lines), max(asked))
        by_merges: dict[int, list[int]] = {}
        for n in asked:
            by_merges.setdefault(min(n, len(result.merges)), []).append(n)
        for n, wanted in by_merges.items():
            note = ""
            if wanted != [n]:
                listed = [f"{w:,}" for w in wanted]
                listed = ", ".join(listed[:-1]) + " and " + listed[-1] if len(listed) > 1 else listed[0]
                note = (f"asked for {listed} merges: the training text allows only {n:,} "
                        "(then every word is one piece)")
            out.append(Entrant(f"BPE-{n}", "bpe", TiktokenTokenizer(
                result.encoding(n), display_name=f"BPE-{n}"), n, note))
    if settings.cl100k:
        remapped = RemappedTokenizer(tiktoken_tokenizer("cl100k_base"),
                                     [*train_lines, *valid_lines])
        n, big = remapped.vocab_size, remapped.base.vocab_size
        out.append(Entrant("cl100k_base", "cl100k_base", remapped,
                           note=f"its ids are renumbered to the {n:,} of its {big:,} tokens "
                                f"this text uses, so its embedding table has {n + 2:,} rows "
                                f"(PAD and EOS included), not {big:,}; the cuts are GPT-4's"))
    return out


def entrant_tokenizers(train_lines: Sequence[str], valid_lines: Sequence[str],
                       settings: TournamentSettings) -> dict[str, Tokenizer]:
    """Every entrant's tokenizer by name (see `entrants`)."""
    return {e.name: e.tokenizer for e in entrants(train_lines, valid_lines, settings)}


# --------------------------------------------------------------------------------------------
# Playing one entrant: windows, training, the held-out score


def windows(lines: Sequence[str], tokenizer: Tokenizer, block: int, stride: int = 1) -> Dataset:
    """Windows of `block` ids (PAD on the left) and the token after each, within each line and
    its end (EOS).

    With ``stride=1`` (scoring) there is one window per token, the first included (its window
    is all PAD): every token of the text is predicted from all the context it has, so every
    character is scored. Training learns from every position of a window (GPT style), so it
    needs only every `stride`-th window, counted back from each line's end: each token is
    still a target in some window (while ``stride <= block``), and the windows take `stride`
    times less memory.

    >>> data = windows(["ab"], UnitTokenizer(["a", "b"], "character"), 2)  # PAD 3, EOS 4
    >>> data.X.tolist(), data.Y.tolist()
    ([[3, 3], [3, 0], [0, 1]], [0, 1, 4])
    >>> every_other = windows(["ab"], UnitTokenizer(["a", "b"], "character"), 2, stride=2)
    >>> every_other.X.tolist(), every_other.Y.tolist()  # [0, 1] -> EOS teaches "b" and EOS
    ([[3, 3], [0, 1]], [0, 4])
    """
    if not 1 <= stride <= block:
        raise ValueError("the stride must be between 1 and the block size")
    pad, eos = tokenizer.vocab_size, tokenizer.vocab_size + 1
    pieces, targets, sentences, offset = [], [], [], 0
    for line in lines:
        ids = tokenizer.encode_known(line).ids + [eos]
        sentences.append(ids)
        pieces.append(torch.full((block,), pad, dtype=torch.long))
        pieces.append(torch.tensor(ids, dtype=torch.long))
        end = offset + block + len(ids)
        targets.append(torch.arange(end - 1, offset + block - 1, -stride).flip(0)
                       if stride > 1 else torch.arange(offset + block, end))
        offset = end
    if not pieces:
        raise TournamentError("there are no lines to make windows from")
    stream, at = torch.cat(pieces), torch.cat(targets)
    X = stream.unfold(0, block, 1)[at - block].contiguous()  # the `block` ids before each target
    return Dataset(tokenizer, block, True, X, stream[at].clone(), sentences)


@dataclass(frozen=True)
class Score:
    """What an entrant paid on the held-out lines, in nats, and what it was scored on."""

    token_nats: float  # -ln p of every held-out token (UNK's bet for an unknown unit)
    unknown_token_nats: float  # the part of token_nats bet on UNK for unknown units
    spelled_nats: float  # spelling out the unknown units
    tokens: int  # held-out tokens predicted (EOS included)
    chars: int  # held-out characters (each line and its newline)
    unknown: int  # unknown units (words or characters)
    units: int  # all units, for the share

    @property
    def bits(self) -> float:
        """Held-out bits per character: (tokens' nats + spelling) / characters / ln 2."""
        return (self.token_nats + self.spelled_nats) / self.chars / LN2

    @property
    def unknown_bits(self) -> float:
        """The part of `bits` paid for unknown units (UNK's bet and their spelling)."""
        return (self.unknown_token_nats + self.spelled_nats) / self.chars / LN2


def token_nats(model, data: Dataset) -> torch.Tensor:
    """-ln p of every token of `data`, each predicted from its full window of context."""
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(data), EVAL_ROWS):
            logits = model.last_logits(data.X[start : start + EVAL_ROWS])
            out.append(F.cross_entropy(logits, data.Y[start : start + EVAL_ROWS], reduction="none"))
    return torch.cat(out) if out else torch.zeros(0)


def heldout_score(model, tokenizer: Tokenizer, train_lines: Sequence[str],
                  valid_lines: Sequence[str], valid: Dataset | None = None) -> Score:
    """Score `model` (trained with `tokenizer`) on the held-out lines, the fair way."""
    valid = valid if valid is not None else windows(valid_lines, tokenizer, model.config.block_size)
    nats = token_nats(model, valid)
    unknown_nats = spelled = 0.0
    unknown = units = 0
    if isinstance(tokenizer, UnitTokenizer):
        train_chars = set("".join(train_lines))
        is_unknown = valid.Y == tokenizer.unknown_id
        unknown_nats = float(nats[is_unknown].sum())
        for line in valid_lines:
            for unit in tokenizer.split(line):
                units += 1
                if unit not in tokenizer.stoi:
                    unknown += 1
                    spelled += (spelling_nats(unit, len(train_chars), train_chars)
                                if tokenizer.kind == "word"
                                else len(unit.encode("utf-8")) * math.log(256))
    return Score(float(nats.sum()), unknown_nats, spelled, len(valid), characters_in(valid_lines),
                 unknown, units)


@dataclass
class EntrantResult:
    """One entrant's row of the results."""

    name: str
    vocab_size: int  # ids, PAD and EOS included
    embedding_parameters: int  # the token embedding table and the output layer
    parameters: int
    tokens_per_char: float  # on the held-out text
    context_chars: float  # characters of text that fit in the context window, on average
    seconds: float  # training time: the trainer's clock while it trained (`Trainer.seconds`)
    heldout_bits: float  # bits per character on the held-out text
    unknown_share: float = 0.0  # held-out units the vocabulary lacked (words, characters)
    unknown_bits: float = 0.0  # the part of heldout_bits paid for them (UNK and spelling)
    train_loss: float = math.nan  # the last step's loss (nats per token, every position)
    kind: str = ""  # one of KINDS
    note: str = ""
    steps: int = 0
    merges: int | None = None  # a BPE's merges


class Match:
    """One entrant in the making: its windows, its model and trainer. Train it in pieces
    (`train`), so a server can hand the CPU around between pieces; then `result()`."""

    def __init__(self, entrant: Entrant, train_lines: Sequence[str], valid_lines: Sequence[str],
                 settings: TournamentSettings):
        s = settings
        self.entrant, self.settings = entrant, settings
        self.train_lines, self.valid_lines = tuple(train_lines), tuple(valid_lines)
        self.train_data = windows(train_lines, entrant.tokenizer, s.block_size,
                                  max(1, s.block_size // TRAIN_STRIDE_PER_BLOCK))
        self.valid_data = windows(valid_lines, entrant.tokenizer, s.block_size)
        self.config = ModelConfig(vocab_size=self.train_data.vocab_size, block_size=s.block_size,
                                  d_model=s.d_model, n_heads=s.n_heads, causal=True,
                                  loss_on="every", n_layers=s.n_layers)
        self.model = build_model(self.config, s.seed)
        self.trainer = Trainer(self.model, self.train_data, lr=s.lr, epochs=s.steps,
                               batch_size=s.batch_size, seed=s.seed)

    @property
    def name(self) -> str:
        return self.entrant.name

    @property
    def steps_done(self) -> int:
        return self.trainer.epoch

    @property
    def done(self) -> bool:
        return self.trainer.done

    def train(self, steps: int | None = None, cpu_seconds: float | None = None,
              wall_seconds: float | None = None, on_step: Callable | None = None) -> int:
        """Up to `steps` more steps (all that remain by default), stopping after the step that
        crosses `cpu_seconds` of this thread's CPU or `wall_seconds` of the clock; returns how
        many it took."""
        start, wall_start, taken = time.thread_time(), time.monotonic(), 0
        while not self.trainer.done and (steps is None or taken < steps):
            self.trainer.run(1, on_step=on_step)
            taken += 1
            if cpu_seconds is not None and time.thread_time() - start >= cpu_seconds:
                break
            if wall_seconds is not None and time.monotonic() - wall_start >= wall_seconds:
                break
        return taken

    def result(self) -> EntrantResult:
        """Score the trained model on the held-out lines (call once training is done)."""
        s, e = self.settings, self.entrant
        score = heldout_score(self.model, e.tokenizer, self.train_lines, self.valid_lines,
                              self.valid_data)
        V, d = self.config.vocab_size, s.d_model
        return EntrantResult(
            name=e.name,
            vocab_size=V,
            embedding_parameters=2 * V * d + V,  # token embedding, output weights and biases
            parameters=self.model.num_parameters(),
            tokens_per_char=score.tokens / score.chars,
            context_chars=s.block_size * score.chars / score.tokens,
            seconds=self.trainer.seconds,
            heldout_bits=score.bits,
            unknown_share=score.unknown / score.units if score.units else 0.0,
            unknown_bits=score.unknown_bits,
            train_loss=self.trainer.history[-1] if self.trainer.history else math.nan,
            kind=e.kind,
            note=self.trainer.stopped_reason or e.note,
            steps=self.trainer.epoch,
            merges=e.merges,
        )


def play(name: str, tokenizer: Tokenizer, train_lines, valid_lines,
         settings: TournamentSettings, on_step: Callable | None = None,
         kind: str = "", note: str = "") -> EntrantResult:
    """Train one entrant and score it on the held-out lines."""
    match = Match(Entrant(name, kind, tokenizer, note=note), train_lines, valid_lines, settings)
    match.train(on_step=on_step)
    return match.result()


# --------------------------------------------------------------------------------------------
# The tournament and what it showed


def _share(x: float) -> str:
    """A share as the page says it: 1 decimal below 10% (0.4%), none above (23%)."""
    return f"{x:.1%}" if x < 0.1 else f"{x:.0%}"


def _ordinal(n: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(n, f"{n}th")


@dataclass
class TournamentResult:
    settings: TournamentSettings
    entrants: list[EntrantResult]
    heldout_chars: int
    heldout_floor_bits: float | None = None
    training_chars: int = 0  # distinct characters of the training lines (C of the spelling)

    def best(self) -> EntrantResult:
        return min(self.entrants, key=lambda e: e.heldout_bits)

    def best_pieces(self) -> EntrantResult | None:
        """The best entrant that cuts words into pieces (everything but words)."""
        pieces = [e for e in self.entrants if e.kind != "words"]
        return min(pieces, key=lambda e: e.heldout_bits) if pieces else None

    def entrant(self, name: str) -> EntrantResult | None:
        return next((e for e in self.entrants if e.name == name), None)

    def unknown_rule(self) -> str:
        """The fair score's rule for unknown words, in one plain sentence."""
        c = self.training_chars or "all the"
        return (f"A word the word model does not know costs what it bet on “unknown word” plus "
                f"spelling the word out letter by letter, each letter and the word's end one "
                f"guess among the {c} characters of the training text and the end sign, so "
                "every model pays for every character of the held-out text.")

    def verdict(self) -> str:
        """What the run showed, in one sentence computed from the results."""
        ranked = sorted(self.entrants, key=lambda e: e.heldout_bits)
        best, words, pieces = ranked[0], self.entrant("words"), self.best_pieces()
        if words is None or pieces is None:
            worst = ranked[-1]
            return (f"On text it never saw, {best.name} did best: {best.heldout_bits:.3f} bits "
                    f"per character, against {worst.heldout_bits:.3f} for {worst.name}.")
        if best is not words:
            place = ranked.index(words) + 1
            if words.unknown_share > 0:
                why = (f": {_share(words.unknown_share)} of the held-out words were new to it, "
                       f"and those cost it {words.unknown_bits:.3f} bits per character")
            else:
                why = ", though it knew every held-out word"
            return (f"On text it never saw, {best.name} did best ({best.heldout_bits:.3f} bits "
                    f"per character) and words came {_ordinal(place)} of {len(ranked)} "
                    f"({words.heldout_bits:.3f}){why}.")
        if words.unknown_share > 0:
            few = (f"only {_share(words.unknown_share)} of the held-out words were new, so the "
                   "word model lost little to unknown words")
        else:
            few = ("every held-out word was one it knew, so the word model lost nothing to "
                   "unknown words")
        return (f"Here words won ({words.heldout_bits:.3f} bits per character, against "
                f"{pieces.heldout_bits:.3f} for the best pieces, {pieces.name}): {few}; turn up "
                "new names or typos and see whether that holds.")


def run_tournament(train_lines: Sequence[str], valid_lines: Sequence[str],
                   settings: TournamentSettings = TournamentSettings(),
                   on_progress: Callable[[str, int, int], None] | None = None,
                   heldout_floor_bits: float | None = None) -> TournamentResult:
    """Every entrant, in turn; `on_progress(name, step, steps)` after each step."""
    check_lines(train_lines, valid_lines)
    results = []
    for entrant in entrants(train_lines, valid_lines, settings):
        step = ((lambda t, name=entrant.name: on_progress(name, t.epoch, t.epochs))
                if on_progress else None)
        match = Match(entrant, train_lines, valid_lines, settings)
        match.train(on_step=step)
        results.append(match.result())
    return finish(results, train_lines, valid_lines, settings, heldout_floor_bits)


def check_lines(train_lines: Sequence[str], valid_lines: Sequence[str]) -> None:
    """Raise `TournamentError` (a sentence) when there is nothing to train on or score."""
    if not any(line.strip() for line in train_lines):
        raise TournamentError("The tournament needs training lines: the text is empty.")
    if not any(line.strip() for line in valid_lines):
        raise TournamentError("The tournament needs held-out lines to score the models on.")


def finish(results: list[EntrantResult], train_lines, valid_lines, settings,
           heldout_floor_bits: float | None = None) -> TournamentResult:
    """The tournament's result from its entrants' results."""
    return TournamentResult(settings, list(results), characters_in(valid_lines),
                            heldout_floor_bits, len(set("".join(train_lines))))


#: CPU seconds of one training step, fitted to steps measured on this project's 2-core machine
#: (batch 32, block 32; it errs a little on the high side): a fixed part, a part per width
#: unit and layer, and a part per score (every position of the batch times every id).
STEP_SECONDS = 4e-3
STEP_SECONDS_PER_WIDTH = 1.2e-4
SECONDS_PER_SCORE = 1.2e-8
#: Preparing the entrants (BPE, windows) and scoring them, per character of text.
SECONDS_PER_CHAR = 1.5e-5


def vocab_estimates(train_lines: Sequence[str], valid_lines: Sequence[str],
                    settings: TournamentSettings) -> dict[str, int]:
    """About how many ids each entrant's model has (at most), without training any BPE."""
    text = "\n".join(train_lines)
    out = {"words": len(set(text.split())) + 3, "characters": len(set(text)) + 3, "bytes": 258}
    for n in sorted(set(settings.bpe_merges)):
        out[f"BPE-{n}"] = 258 + n
    if settings.cl100k:
        base = tiktoken_tokenizer("cl100k_base")
        out["cl100k_base"] = len({i for line in (*train_lines, *valid_lines)
                                  for i in base.encode(line)}) + 2
    return out


def estimated_seconds(train_lines: Sequence[str], valid_lines: Sequence[str],
                      settings: TournamentSettings) -> float:
    """CPU seconds the whole tournament should take on this project's 2-core machine.

    >>> s = TournamentSettings()
    >>> round(estimated_seconds(["the cat sat"] * 1000, ["the cat"], s))  # BPEs at full size
    17
    """
    s = settings
    scores = s.batch_size * s.block_size
    step = sum(STEP_SECONDS + STEP_SECONDS_PER_WIDTH * s.d_model * s.n_layers
               + SECONDS_PER_SCORE * scores * V
               for V in vocab_estimates(train_lines, valid_lines, s).values())
    chars = characters_in(train_lines) + characters_in(valid_lines)
    return s.steps * step + SECONDS_PER_CHAR * chars


def step_bytes(vocab_size: int, settings: TournamentSettings) -> float:
    """Memory for one training step, mostly the scores (kept about three times)."""
    s = settings
    return 4 * (3 * s.batch_size * s.block_size * vocab_size
                + 30 * s.n_layers * s.batch_size * s.block_size * s.d_model)


def entrant_bpe(train_lines: Sequence[str], merges: int):
    """The `minillm.bpe.BPEResult` behind a tournament's BPE entrant with `merges` merges
    (the same training on the same lines), e.g. to train a model with it on the Train page."""
    return train_bpe("\n".join(train_lines), merges)


#: An entrant's kind, as `minillm.experiment.TrainSettings.tokenizer` names it.
TRAIN_TOKENIZERS = {"words": "word", "characters": "character", "bytes": "bytes", "bpe": "bpe",
                    "cl100k_base": "cl100k_base"}
MAX_TRAIN_BLOCK = 16  # the Train page's longest context


def train_run(kind: str, corpus: TournamentCorpus, settings: TournamentSettings,
              budgets=None, bpe=None):
    """The Train page's run closest to this experiment's for one entrant: its tokenizer, model
    size, steps of seeded batches, every position scored under the causal mask, an end-of-line
    token, the same lines and share held out, with the context as long as Train allows and
    `budgets` (a `minillm.budget.Budgets`) fit. `bpe`: the BPE entrant's encoding.

    Train's word and character models know every unit of the text (no unknown token), so their
    numbers differ a little from the experiment's. Raises `minillm.budget.BudgetError` when
    even a one-token context does not fit.
    """
    from minillm.budget import BudgetError, check_run
    from minillm.experiment import TrainSettings, make_tokenizer

    run = TrainSettings(corpus.lines or corpus.train + corpus.valid, corpus.name,
                        TRAIN_TOKENIZERS[kind],
                        block_size=min(settings.block_size, MAX_TRAIN_BLOCK),
                        d_model=settings.d_model, n_heads=settings.n_heads,
                        n_layers=settings.n_layers, lr=settings.lr, epochs=settings.steps,
                        batch_size=settings.batch_size, seed=settings.seed, eos=True,
                        loss_on="every", causal=True, valid_share=VALID_SHARE)
    tokenizer = make_tokenizer(run, bpe)
    # a window per token of the training lines (EOS included, the first token excluded)
    windows = sum(len(tokenizer.encode(line)) for line in corpus.train)
    vocab = tokenizer.vocab_size + 2  # PAD and EOS
    for block in range(run.block_size, 1, -1):
        fitting = replace(run, block_size=block)
        try:
            check_run(fitting, windows, vocab, budgets)
            return fitting
        except BudgetError:
            continue
    check_run(replace(run, block_size=1), windows, vocab, budgets)
    return replace(run, block_size=1)


def with_budget(settings: TournamentSettings, budget: str, size: str) -> TournamentSettings:
    """`settings` with one of the page's budgets (BUDGETS) and model sizes (MODEL_SIZES)."""
    d_model, n_heads, n_layers = MODEL_SIZES[size]
    return replace(settings, steps=BUDGETS[budget], d_model=d_model, n_heads=n_heads,
                   n_layers=n_layers)
