"""One training experiment from a handful of settings: what the Train page runs.

    exp = Experiment(TrainSettings())          # the notebook's run
    exp.trainer.run()
    exp.summary()["learned"]                   # share of what can be learned, 0..1

Held-out text: a share of the lines (`TrainSettings.valid_share`, default 10%) is hidden
before training, always the same lines whatever the model's seed (split seed 0), so runs
compare. The model never trains on them; the summary scores it there too. The tokenizer's
vocabulary is fitted on all lines (a word seen only in the hidden lines still has an id, which
the model never learns: predicting it costs what it should). A corpus too small to split (the
notebook's six sentences) trains on everything, as before, and `valid_reason` says why.

Everything a page needs to show about a run lives here, so pages stay layout only and a
notebook can reproduce every number the app shows.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import tiktoken

from minillm.budget import Budgets, RunCost, check_run
from minillm.corpus import CATS_AND_DOGS
from minillm.data import Dataset, build_dataset, loss_floor
from minillm.heldout import bits_per_character, characters_in, nats_per_token, split_lines
from minillm.model import ModelConfig, MiniTransformer, build_model
from minillm.stories import StorySettings
from minillm.tokenizers import (ByteTokenizer, CharTokenizer, TiktokenTokenizer, Tokenizer,
                                WordTokenizer, tiktoken_tokenizer)
from minillm.train import Trainer, final_loss, honest_loss, learned_fraction, mean_loss

SPLIT_SEED = 0  # the same lines are held out whatever the model's seed


def default_device() -> str:
    """The notebook's rule: ``"cuda" if torch.cuda.is_available() else "cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"

TOKENIZER_KINDS = ("word", "character", "bpe", "bytes", "cl100k_base")


@dataclass(frozen=True)
class TrainSettings:
    """The notebook's values are the defaults."""

    lines: tuple[str, ...] = CATS_AND_DOGS
    corpus_name: str = "Cats and dogs (the notebook)"
    tokenizer: str = "word"  # "word", "character", "bpe", "bytes" or "cl100k_base"
    block_size: int = 5
    d_model: int = 32
    n_heads: int = 2
    lr: float = 1e-3
    epochs: int = 300
    seed: int = 42
    eos: bool = False
    loss_on: str = "last"  # "last" (the notebook) or "every"
    causal: bool = False
    n_layers: int = 1  # blocks stacked (the notebook: 1)
    batch_size: int = 0  # windows per step; 0: all of them (full batch, the notebook)
    valid_share: float = 0.1  # share of the lines held out (none when too few to split)

    def label(self) -> str:
        """A short description for a legend, in words: what differs from the notebook.

        >>> TrainSettings().label()
        'notebook settings'
        >>> TrainSettings(corpus_name="your sentences", tokenizer="character", eos=True,
        ...               loss_on="every").label()
        'your sentences · characters · EOS · every position'
        >>> TrainSettings(lr=0.01, batch_size=64, n_layers=2, causal=True).label()
        'lr 0.01 · causal mask · 2 layers · batch 64'
        """
        default = TrainSettings()
        parts = [_plain_setting(name, value) for name, value in asdict(self).items()
                 if name != "lines" and value != getattr(default, name)]
        return " · ".join(part for part in parts if part) or "notebook settings"


_TOKENIZER_WORDS = {"word": "words", "character": "characters", "bpe": "BPE", "bytes": "bytes",
                    "cl100k_base": "cl100k_base"}


def _plain_setting(name: str, value) -> str:
    """One setting as a legend says it ("block 8", "every position", "no EOS")."""
    if name == "corpus_name":
        return str(value)
    if name == "tokenizer":
        return _TOKENIZER_WORDS.get(value, str(value))
    if name == "loss_on":
        return f"{value} position"
    if name in ("eos", "causal"):
        word = "EOS" if name == "eos" else "causal mask"
        return word if value else f"no {word}"
    if name == "valid_share":
        return f"{value:.0%} held out"
    if name == "lr":
        return f"lr {value:g}"
    short = {"block_size": "block {}", "d_model": "width {}", "n_heads": "{} heads",
             "epochs": "{} epochs", "seed": "seed {}", "n_layers": "{} layers",
             "batch_size": "batch {}"}
    return short.get(name, name + " {}").format(value)


def make_tokenizer(settings: TrainSettings, bpe: tiktoken.Encoding | None = None) -> Tokenizer:
    if settings.tokenizer == "word":
        return WordTokenizer.fit(settings.lines)
    if settings.tokenizer == "character":
        return CharTokenizer.fit(settings.lines)
    if settings.tokenizer == "bpe":
        if bpe is None:
            raise ValueError("train a BPE first (Build a BPE page), or pick word or character")
        return TiktokenTokenizer(bpe, display_name=f"BPE ({bpe.n_vocab:,} tokens)")
    if settings.tokenizer == "bytes":
        return ByteTokenizer()
    if settings.tokenizer == "cl100k_base":  # its ids renumbered to the tokens these lines use
        from minillm.tournament import RemappedTokenizer

        return RemappedTokenizer(tiktoken_tokenizer("cl100k_base"), settings.lines)
    raise ValueError(f"tokenizer must be one of {TOKENIZER_KINDS}")


@dataclass
class Experiment:
    """One run. With `budgets` (a class server passes its own) a run that would cost more than
    they allow raises `minillm.budget.BudgetError` before the model is built."""

    settings: TrainSettings
    bpe: tiktoken.Encoding | None = None
    budgets: Budgets | None = field(default=None, repr=False)
    #: -ln p of each line under the grammar that made it (generated stories), when known:
    #: then the held-out floor in bits per character is known too.
    line_nats: tuple[float, ...] | None = field(default=None, repr=False)
    #: The grammar's knobs, when the lines are generated stories: Generate parses what the
    #: model writes with the same grammar.
    story_settings: StorySettings | None = field(default=None, repr=False)
    #: Where the model trains. The notebook's rule by default (a GPU when there is one); a
    #: class server passes "cpu".
    device: str = field(default_factory=lambda: default_device())
    tokenizer: Tokenizer = field(init=False)
    dataset: Dataset = field(init=False)  # the training lines' windows
    valid: Dataset | None = field(init=False, default=None)  # the held-out lines' windows
    valid_reason: str = field(init=False, default="")  # why there is no held-out part
    model: MiniTransformer = field(init=False)
    trainer: Trainer = field(init=False)
    floor: float = field(init=False)  # the best loss any model can reach here
    start_loss: float = field(init=False)  # ln|V|: a model that knows nothing, guessing evenly
    cost: RunCost | None = field(init=False, default=None)  # the estimate, when budgets are set

    def __post_init__(self):
        s = self.settings
        self.tokenizer = make_tokenizer(s, self.bpe)
        self.split = split_lines(s.lines, s.valid_share, seed=SPLIT_SEED)
        self.valid_reason = self.split.reason
        self.dataset = build_dataset(self.split.train, self.tokenizer, s.block_size, s.eos)
        if self.split.valid:
            try:
                self.valid = build_dataset(self.split.valid, self.tokenizer, s.block_size, s.eos)
            except ValueError:  # every held-out line is a single token: nothing to predict
                self.valid_reason = "The held-out lines have nothing to predict (one token each)."
        if self.budgets is not None:  # before the model exists: refusing must cost nothing
            self.cost = check_run(s, len(self.dataset), self.dataset.vocab_size, self.budgets,
                                  valid_windows=len(self.valid) if self.valid is not None else 0)
        config = ModelConfig(
            vocab_size=self.dataset.vocab_size,
            block_size=s.block_size,
            d_model=s.d_model,
            n_heads=s.n_heads,
            causal=s.causal,
            loss_on=s.loss_on,
            n_layers=s.n_layers,
        )
        self.model = build_model(config, s.seed).to(self.device)
        self.trainer = Trainer(self.model, self.dataset, lr=s.lr, epochs=s.epochs,
                               batch_size=s.batch_size or None, seed=s.seed, valid=self.valid)
        self.floor = loss_floor(self.dataset, s.loss_on)
        self.start_loss = math.log(self.dataset.vocab_size)

    def _predicted(self, part: str) -> tuple[int, int]:
        """(tokens predicted, characters) of the training or the held-out lines.

        Each token is counted once: one per window (the token after it). The first token of
        each line is given to the model, not predicted, so it is not counted. On every
        position the loss is a mean over positions, and a token is a target at up to
        block_size positions (once for each window that still sees it): counting those
        positions as tokens would multiply the text's cost by about the block size.
        """
        dataset, lines = ((self.dataset, self.split.train) if part == "train"
                          else (self.valid, self.split.valid))
        return len(dataset), characters_in(lines)

    def bits_per_character(self, loss: float, part: str = "train") -> float:
        """A loss (nats per token) on the training or held-out lines, as bits per character
        of those lines (see `minillm.heldout.bits_per_character` and `_predicted`)."""
        return bits_per_character(loss, *self._predicted(part))

    @property
    def heldout_floor_bits(self) -> float | None:
        """The best bits per character any model can reach on the held-out lines, when the
        grammar that made them is known (`line_nats`), else None."""
        if self.line_nats is None or not self.split.valid:
            return None
        nats = math.fsum(self.line_nats[i] for i in self.split.valid_positions)
        return nats / characters_in(self.split.valid) / math.log(2)

    @property
    def heldout_floor_loss(self) -> float | None:
        """`heldout_floor_bits` as a loss (nats per token of the held-out lines), to draw on
        the loss chart beside the held-out curve; None when it is not known."""
        bits = self.heldout_floor_bits
        if bits is None or self.valid is None:
            return None
        return nats_per_token(bits, *self._predicted("valid"))

    def summary(self) -> dict:
        """The numbers that say how the run went.

        Computed once per state of the run (its epoch and how it stopped) and kept: a page
        that redraws a finished run asks again on every rerun, and on a large every-position
        run the final loss is a full pass over the data.
        """
        key = (self.trainer.epoch, self.trainer.stopped_reason, id(self.model))
        cached = getattr(self, "_summary", None)
        if cached is not None and cached[0] == key:
            return dict(cached[1])
        out = self._summary_now()
        self._summary = (key, out)
        return dict(out)

    def verdicts(self) -> list[str]:
        """What the run's numbers say, in sentences (the Train page shows the same ones), e.g.
        ``"\\n".join(exp.verdicts())`` in a notebook."""
        return list(self.summary()["verdict_sentences"].values())

    def _summary_now(self) -> dict:
        loss = final_loss(self.model, self.dataset) if self.trainer.history else self.start_loss
        out = {
            "epochs": self.trainer.epoch,
            "loss": loss,
            "floor": self.floor,
            "start_loss": self.start_loss,
            "learned": learned_fraction(loss, self.floor, self.start_loss),
            "parameters": self.model.num_parameters(),
            "seconds": self.trainer.seconds,
            "stopped_reason": self.trainer.stopped_reason,
            "windows": len(self.dataset),
            "vocab_size": self.dataset.vocab_size,
        }
        if self.settings.loss_on == "every":
            out["honest_loss"] = honest_loss(self.model, self.dataset)
        out["train_bits"] = self.bits_per_character(loss) if self.trainer.history else None
        out["valid_reason"] = self.valid_reason
        out["heldout_floor_bits"] = self.heldout_floor_bits
        if self.valid is not None:
            valid_loss = mean_loss(self.model, self.valid)
            out["valid_loss"] = valid_loss
            out["valid_bits"] = self.bits_per_character(valid_loss, "valid")
            best_epoch, best = min(self.trainer.valid_history, key=lambda e: e[1],
                                   default=(0, valid_loss))
            out["valid_best"], out["valid_best_epoch"] = best, best_epoch
        out["verdicts"] = verdicts(out, self.trainer.history)
        out["verdict_sentences"] = verdict_sentences(out, self.trainer.history, self.settings.lr)
        return out


def verdicts(summary: dict, history: list[float]) -> list[str]:
    """What the run's numbers say, as short names the page turns into sentences:

    - "peeking": every-position loss below the floor, which only a model reading the answer
      (no causal mask) can do;
    - "lr_too_high": on the way the loss rose above twice where it started;
    - "overfitting": the held-out loss ended clearly above its best while the training loss
      kept falling: the model memorises its lines instead of learning the language.
    """
    out = []
    if "honest_loss" in summary and summary["loss"] < summary["floor"] - 0.02:
        out.append("peeking")
    if not summary["stopped_reason"] and history and max(history) > 2 * summary["start_loss"]:
        out.append("lr_too_high")
    if "valid_loss" in summary and summary["valid_loss"] > summary["valid_best"] + 0.02 \
            and summary["loss"] <= min(history, default=summary["loss"]) + 0.02:
        out.append("overfitting")
    return out


def verdict_sentences(summary: dict, history: list[float], lr: float) -> dict[str, str]:
    """Each verdict of `verdicts` said in a sentence, with the run's own numbers: what the
    Train page shows, and what a notebook prints (`Experiment.verdicts()`).

    >>> verdict_sentences({"verdicts": ["lr_too_high"]}, [2.7, 9.1, 0.5], 0.1)["lr_too_high"]
    'The learning rate 0.1 is too high: on the way the loss shot up to 9.1 (cut off at the top of the chart). Try 1e-3.'
    """
    out = {}
    for name in summary["verdicts"]:
        if name == "peeking":
            out[name] = (f"The training loss {summary['loss']:.4f} is below the floor "
                         f"{summary['floor']:.4f}, which no honest model can do: the model was "
                         "peeking at the answer. Without the causal mask each position sees the "
                         "next word. With the future hidden, as when it writes new text, its loss "
                         f"is {summary['honest_loss']:.4f}.")
        elif name == "lr_too_high":
            out[name] = (f"The learning rate {lr:g} is too high: on the way the loss shot up to "
                         f"{max(history):.3g} (cut off at the top of the chart). Try 1e-3.")
        elif name == "overfitting":
            out[name] = (f"The held-out loss was lowest at epoch {summary['valid_best_epoch']} "
                         f"({summary['valid_best']:.4f}) and has risen since (now "
                         f"{summary['valid_loss']:.4f}), while the training loss kept falling: "
                         "the model is memorising its lines, not learning the language. Fewer "
                         "epochs, a smaller model or more text would help.")
    return out
