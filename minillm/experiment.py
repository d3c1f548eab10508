"""One training experiment from a handful of settings: what the Train page runs.

    exp = Experiment(TrainSettings())          # the notebook's run
    exp.trainer.run()
    exp.summary()["learned"]                   # share of what can be learned, 0..1

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
from minillm.model import ModelConfig, MiniTransformer, build_model
from minillm.tokenizers import CharTokenizer, TiktokenTokenizer, Tokenizer, WordTokenizer
from minillm.train import Trainer, final_loss, honest_loss, learned_fraction

TOKENIZER_KINDS = ("word", "character", "bpe")


@dataclass(frozen=True)
class TrainSettings:
    """The notebook's values are the defaults."""

    lines: tuple[str, ...] = CATS_AND_DOGS
    corpus_name: str = "Cats and dogs (the notebook)"
    tokenizer: str = "word"  # "word", "character" or "bpe"
    block_size: int = 5
    d_model: int = 32
    n_heads: int = 2
    lr: float = 1e-3
    epochs: int = 300
    seed: int = 42
    eos: bool = False
    loss_on: str = "last"  # "last" (the notebook) or "every"
    causal: bool = False

    def label(self) -> str:
        """A short description for a legend: what differs from the notebook."""
        default = TrainSettings()
        parts = [
            f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
            for name, value in asdict(self).items()
            if name not in ("lines",) and value != getattr(default, name)
        ]
        return ", ".join(parts) or "notebook settings"


def make_tokenizer(settings: TrainSettings, bpe: tiktoken.Encoding | None = None) -> Tokenizer:
    if settings.tokenizer == "word":
        return WordTokenizer.fit(settings.lines)
    if settings.tokenizer == "character":
        return CharTokenizer.fit(settings.lines)
    if settings.tokenizer == "bpe":
        if bpe is None:
            raise ValueError("train a BPE first (Build a BPE page), or pick word or character")
        return TiktokenTokenizer(bpe, display_name=f"BPE ({bpe.n_vocab:,} tokens)")
    raise ValueError(f"tokenizer must be one of {TOKENIZER_KINDS}")


@dataclass
class Experiment:
    """One run. With `budgets` (a class server passes its own) a run that would cost more than
    they allow raises `minillm.budget.BudgetError` before the model is built."""

    settings: TrainSettings
    bpe: tiktoken.Encoding | None = None
    budgets: Budgets | None = field(default=None, repr=False)
    tokenizer: Tokenizer = field(init=False)
    dataset: Dataset = field(init=False)
    model: MiniTransformer = field(init=False)
    trainer: Trainer = field(init=False)
    floor: float = field(init=False)  # the best loss any model can reach here
    start_loss: float = field(init=False)  # ln|V|: a model that knows nothing, guessing evenly
    cost: RunCost | None = field(init=False, default=None)  # the estimate, when budgets are set

    def __post_init__(self):
        s = self.settings
        self.tokenizer = make_tokenizer(s, self.bpe)
        self.dataset = build_dataset(s.lines, self.tokenizer, s.block_size, s.eos)
        if self.budgets is not None:  # before the model exists: refusing must cost nothing
            self.cost = check_run(s, len(self.dataset), self.dataset.vocab_size, self.budgets)
        config = ModelConfig(
            vocab_size=self.dataset.vocab_size,
            block_size=s.block_size,
            d_model=s.d_model,
            n_heads=s.n_heads,
            causal=s.causal,
            loss_on=s.loss_on,
        )
        self.model = build_model(config, s.seed)
        self.trainer = Trainer(self.model, self.dataset, lr=s.lr, epochs=s.epochs)
        self.floor = loss_floor(self.dataset, s.loss_on)
        self.start_loss = math.log(self.dataset.vocab_size)

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
        return out
