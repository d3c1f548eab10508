"""What a training run will cost, worked out from its settings before anything is built.

A class server is shared: thirty students, two cores, a few GB of memory. One student who asks
for the biggest model on the biggest corpus must get a plain sentence ("lower d_model to 32"),
not a server that freezes for everyone. So before a run is built we estimate three things
from the settings and the size of the data, and compare them with the server's budgets:

- **memory for one training step**: the numbers a full-batch step keeps alive at once. The
  largest are the scores (logits): one per vocabulary id for every position scored, so
  ``windows x V`` on the notebook's last-position objective and ``windows x block x V`` when
  every position is scored. Then the activations (``windows x block x d_model`` several
  times over) and the attention maps (``windows x heads x block x block``).
- **CPU time for one epoch**: the multiply-adds of one forward and backward pass (about 3x
  the forward's) and the element-wise work, at rates measured on a class server.
- **memory kept** afterwards: the weights with their AdamW averages, the best weights and the
  snapshots kept for replaying attention, plus the dataset's windows.
- **the held-out checks**: the trainer scores the held-out windows (`TrainSettings.valid_share`)
  at the start and about every 50th of the run (`evaluations`), a forward pass over all of
  them with no gradients. On a mini-batch run that one pass can cost more than hundreds of
  steps, so it is counted in the run's CPU, in the epoch that does it (a chunk cannot stop
  in the middle of it), and in the memory of a step: it scores `EVAL_ROWS` windows at a time.

What costs is counted, not words: a corpus of 20,000 different Chinese characters is small in
words but has a vocabulary of 20,000 for the character tokenizer.

    cost = run_cost(TrainSettings(), windows=28, vocab_size=15)
    budget_problem(cost, TrainSettings())   # None: the notebook's run fits easily

The budgets are settings of the server (environment variables, see `Budgets.from_env`),
sized by default for 30 students on 2 cores with 1 GB for everyone's kept models.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for type hints: the budget module builds nothing
    from minillm.experiment import TrainSettings

FLOAT_BYTES = 4  # float32 weights and activations
ID_BYTES = 8  # token ids are int64
#: Copies of the weights a run keeps: the weights, their gradients, AdamW's two running
#: averages, the best weights seen, and the snapshots for replaying attention (see
#: minillm.train.MAX_SNAPSHOTS, plus one being added).
KEPT_WEIGHT_COPIES = 5 + 13
#: CPU seconds per unit of work on one thread, fitted by ``bench/budget_check.py`` to runs
#: measured on a class server, then raised by `SAFETY` so that the estimate errs on the side
#: of refusing: per multiply-add of the matrix products; per position-and-width number that
#: the last-position path's element-wise steps touch; per score and per attention weight the
#: every-position path (autograd) touches; and a fixed cost per epoch.
SECONDS_PER_FLOP = 1.13e-11
SECONDS_PER_ACTIVATION_LAST = 7.0e-8
SECONDS_PER_SCORE_EVERY = 3.2e-8
SECONDS_PER_ATTENTION_EVERY = 1.42e-7
SECONDS_PER_EPOCH = 6.4e-4
SAFETY = 1.5
#: Floats of activations a step keeps per position and per width unit (LayerNorms, attention
#: input and output, the 4x feed-forward, residuals, and their gradients); autograd on every
#: position keeps more than the hand-written last-position gradients.
ACTIVATIONS_LAST, ACTIVATIONS_EVERY = 12, 28
#: The scores are kept about three times: logits, their softmax, and the softmax's gradient.
LOGIT_COPIES = 3
STEP_OVERHEAD_BYTES = 16e6  # what the first step allocates whatever the size
#: A held-out check is a forward pass with no gradients: it costs at most about this share of
#: the estimate for a full-batch training epoch on the same windows (measured on stories runs,
#: characters and words, last and every position, 1 to 4 layers).
EVAL_SHARE = 0.5
#: The held-out check scores this many windows at a time (minillm.train.EVAL_ROWS) and keeps
#: only the forward pass's numbers: the scores and their log-softmax, and fewer activations.
EVAL_ROWS = 4096
EVAL_LOGIT_COPIES = 2
#: Held-out checks per run: one at the start, then every ``epochs // EVALUATIONS`` epochs and
#: at the end (minillm.train.Trainer's ``eval_every``).
EVALUATIONS = 50

# The ranges the Train page offers: also the limits a loaded model file must respect.
BLOCK_SIZES = range(1, 17)
D_MODELS = (8, 16, 32, 64, 128)
HEAD_CHOICES = (1, 2, 4, 8, 16)
EPOCHS = range(10, 2001)
SEEDS = range(0, 1_000_001)
LAYERS = (1, 2, 3, 4)
BATCH_SIZES = (8, 16, 32, 64, 128, 256)
MAX_VALID_SHARE = 0.5
LEARNING_RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 10.0, 1000.0)


class BudgetError(ValueError):
    """A run the server cannot afford; the message says which setting to lower, and to what."""


@dataclass(frozen=True)
class Budgets:
    """What one run may cost on this server."""

    step_mb: float = 500.0  # memory one training step may use (trainings take turns)
    epoch_seconds: float = 0.5  # CPU for one epoch: a chunk of training ends within ~1 s
    run_seconds: float = 120.0  # CPU for the whole run
    kept_mb: float = 34.0  # memory a finished run keeps (1 GB shared by 30 sessions)

    @classmethod
    def from_env(cls, environ=os.environ) -> "Budgets":
        """Budgets from ``MINILLM_STEP_MB``, ``MINILLM_EPOCH_SECONDS``, ``MINILLM_RUN_SECONDS``
        and ``MINILLM_KEPT_MB`` (each optional; a value that is not a positive number is ignored).
        """
        values = {}
        for name in ("step_mb", "epoch_seconds", "run_seconds", "kept_mb"):
            raw = environ.get(f"MINILLM_{name.upper()}")
            try:
                number = float(raw) if raw is not None else math.nan
            except ValueError:
                number = math.nan
            if math.isfinite(number) and number > 0:
                values[name] = number
        return cls(**values)


@dataclass(frozen=True)
class RunCost:
    """The estimated cost of one run."""

    parameters: int
    step_bytes: float  # memory for one training step
    epoch_seconds: float  # CPU for one epoch (the longest: one that also checks the held-out text)
    run_seconds: float  # CPU for all epochs and all held-out checks
    kept_bytes: float  # memory kept while the run is the session's model
    eval_seconds: float = 0.0  # CPU for one held-out check (0: no held-out text)
    evaluations: int = 0  # held-out checks in the run

    def describe(self) -> str:
        """In words, for a caption under the settings."""
        checks = (f" ({self.evaluations} checks on the held-out text, about "
                  f"{_seconds(self.eval_seconds)} each)" if self.evaluations else "")
        return (f"{self.parameters:,} parameters; one step needs about {_size(self.step_bytes)}, "
                f"an epoch about {_seconds(self.epoch_seconds)} of CPU, the whole run about "
                f"{_seconds(self.run_seconds)}{checks}; the model keeps {_size(self.kept_bytes)}.")


def parameter_count(vocab_size: int, block_size: int, d_model: int, n_layers: int = 1) -> int:
    """Weights of the notebook's model: embeddings, attention, feed-forward, LayerNorms, head.

    >>> parameter_count(15, 5, 32)   # the notebook's model
    13839
    """
    V, T, d = vocab_size, block_size, d_model
    embeddings = V * d + T * d
    attention = 3 * d * d + 3 * d + d * d + d
    feed_forward = d * 4 * d + 4 * d + 4 * d * d + d
    norms = 4 * d
    head = d * V + V
    return embeddings + n_layers * (attention + feed_forward + norms) + head


def evaluations(epochs: int) -> int:
    """Held-out checks in a run of `epochs` (as minillm.train.Trainer schedules them).

    >>> evaluations(300), evaluations(10), evaluations(2000)
    (51, 11, 51)
    """
    every = max(1, epochs // EVALUATIONS)
    return 1 + epochs // every + (1 if epochs % every else 0)


def estimated_valid_windows(settings: "TrainSettings", windows: int) -> int:
    """The held-out windows a run will have, from its training windows and held-out share
    (the lines are split by share, so the windows split about the same way)."""
    share = getattr(settings, "valid_share", 0.0)
    if not share or share >= 1:
        return 0
    return math.ceil(windows * share / (1 - share))


def _pass_cost(settings: "TrainSettings", N: int, V: int, P: int) -> tuple[float, float, int]:
    """(multiply-adds, element-wise seconds, positions scored) of one training pass over N windows."""
    L = getattr(settings, "n_layers", 1)
    T, d, H = settings.block_size, settings.d_model, settings.n_heads
    every = settings.loss_on == "every" or L > 1  # lower layers run on every position
    scored = N * T if settings.loss_on == "every" else N  # positions whose next token is scored
    # Multiply-adds of the matrix products, forward and backward (about 3x the forward):
    # keys and values for every position; queries, attention, feed-forward and head for the
    # scored positions (the last-position path skips the rest).
    flops = 3 * (L * 4 * N * T * d * d + (L - 1) * N * T * (20 * d * d + 4 * T * d)
                 + scored * (20 * d * d + 2 * d * V) + 4 * scored * T * d)
    if every:
        seconds = (SECONDS_PER_SCORE_EVERY * scored * V
                   + SECONDS_PER_ATTENTION_EVERY * L * N * H * T * T)
    else:  # the scores' softmax, log and gradient are element-wise work too (a large V)
        seconds = SECONDS_PER_ACTIVATION_LAST * N * T * d + SECONDS_PER_SCORE_EVERY * scored * V
    return flops, seconds, scored


def _step_bytes(settings, N: int, V: int, P: int, logit_copies: int, activations: int,
                weight_copies: int) -> float:
    L = getattr(settings, "n_layers", 1)
    T, d, H = settings.block_size, settings.d_model, settings.n_heads
    every = settings.loss_on == "every" or L > 1
    scored = N * T if settings.loss_on == "every" else N
    return STEP_OVERHEAD_BYTES + FLOAT_BYTES * (
        logit_copies * scored * V
        + activations * L * N * T * d
        + 3 * L * N * H * T * (T if every else 1)
        + weight_copies * P
    )


def run_cost(settings: "TrainSettings", windows: int, vocab_size: int,
             valid_windows: int | None = None) -> RunCost:
    """The cost of training `settings` on `windows` (context -> next) pairs over `vocab_size`
    ids, with `valid_windows` held-out windows checked during the run (by default, what the
    settings' held-out share will hold out: `estimated_valid_windows`)."""
    L = getattr(settings, "n_layers", 1)
    if getattr(settings, "batch_size", 0):  # a step reads a batch, not all the windows
        N = min(windows, settings.batch_size)
    else:
        N = windows
    V, T, d = vocab_size, settings.block_size, settings.d_model
    P = parameter_count(V, T, d, L)
    every = settings.loss_on == "every" or L > 1
    flops, seconds, _ = _pass_cost(settings, N, V, P)
    train_seconds = SAFETY * (SECONDS_PER_FLOP * flops + seconds + SECONDS_PER_EPOCH)
    activations = ACTIVATIONS_EVERY if every else ACTIVATIONS_LAST
    step_bytes = _step_bytes(settings, N, V, P, LOGIT_COPIES, activations, 5)
    if valid_windows is None:
        valid_windows = estimated_valid_windows(settings, windows)
    checks, eval_seconds = 0, 0.0
    if valid_windows:
        checks = evaluations(settings.epochs)
        flops, seconds, _ = _pass_cost(settings, valid_windows, V, P)
        eval_seconds = SAFETY * EVAL_SHARE * (SECONDS_PER_FLOP * flops + seconds + SECONDS_PER_EPOCH)
        rows = min(valid_windows, EVAL_ROWS)  # scored a chunk at a time, without gradients
        step_bytes = max(step_bytes, _step_bytes(settings, rows, V, P, EVAL_LOGIT_COPIES,
                                                 ACTIVATIONS_LAST, 1))
    data_bytes = ID_BYTES * (windows + valid_windows) * (T + 1) * (2 if every else 1)
    kept_bytes = FLOAT_BYTES * KEPT_WEIGHT_COPIES * P + data_bytes
    return RunCost(P, step_bytes, train_seconds + eval_seconds,
                   train_seconds * settings.epochs + eval_seconds * checks, kept_bytes,
                   eval_seconds, checks)


def _size(n_bytes: float) -> str:
    if n_bytes >= 1e9:
        return f"{n_bytes / 1e9:.1f} GB"
    if n_bytes >= 1e6:
        return f"{n_bytes / 1e6:.0f} MB"
    return f"{max(n_bytes / 1e3, 1):.0f} kB"


def _seconds(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    if seconds >= 60:
        minutes = round(seconds / 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    if seconds >= 1:
        return f"{seconds:.0f} s"
    return f"{seconds:.2f} s"


def _over(cost: RunCost, budgets: Budgets) -> list[str]:
    """What is over budget, in words (empty when the run fits)."""
    over = []
    if cost.step_bytes > budgets.step_mb * 1e6:
        over.append(f"one training step would need about {_size(cost.step_bytes)} of memory "
                    f"(this server allows {_size(budgets.step_mb * 1e6)})")
    if cost.epoch_seconds > budgets.epoch_seconds:
        over.append(f"one epoch would take about {_seconds(cost.epoch_seconds)} of CPU "
                    f"(this server allows {_seconds(budgets.epoch_seconds)})")
    if cost.run_seconds > budgets.run_seconds:
        over.append(f"the whole run would take about {_seconds(cost.run_seconds)} of CPU "
                    f"(this server allows {_seconds(budgets.run_seconds)} a run)")
    if cost.kept_bytes > budgets.kept_mb * 1e6:
        over.append(f"the trained model would keep about {_size(cost.kept_bytes)} "
                    f"(this server allows {_size(budgets.kept_mb * 1e6)} a student)")
    return over


def _fits(settings, windows, vocab_size, budgets, valid_windows=None) -> bool:
    return not _over(run_cost(settings, windows, vocab_size, valid_windows), budgets)


def _moves(settings):
    """Ways to make a run cheaper, one setting each: (words, [cheaper settings, largest first])."""
    s = settings
    smaller_d = [replace(s, d_model=d, n_heads=max(h for h in HEAD_CHOICES
                                                    if d % h == 0 and h <= s.n_heads))
                 for d in sorted(D_MODELS, reverse=True) if d < s.d_model]
    yield "score the last position only (as the notebook does)", (
        [replace(s, loss_on="last", causal=False)] if s.loss_on == "every" else [])
    yield "d_model", smaller_d
    yield "the block size", [replace(s, block_size=b) for b in range(s.block_size - 1, 0, -1)]
    fewer = [e for e in (1000, 500, 300, 200, 100, 50, 20, 10) if e < s.epochs]
    yield "the epochs", [replace(s, epochs=e) for e in fewer]


def _value(name: str, settings) -> str:
    return {"d_model": f"{settings.d_model}", "the block size": f"{settings.block_size}",
            "the epochs": f"{settings.epochs:,}"}.get(name, "")


def suggestions(settings: "TrainSettings", windows: int, vocab_size: int,
                budgets: Budgets, valid_windows: int | None = None) -> str | None:
    """What to change so that the run fits, in words: one setting if one is enough (each such
    choice, at its largest value that fits), else several, changed in turn."""
    single = []
    for name, options in _moves(settings):
        fitting = [o for o in options if _fits(o, windows, vocab_size, budgets, valid_windows)]
        if fitting:
            value = _value(name, fitting[0])
            single.append(f"lower {name} to {value}" if value else name)
    if single:
        return "To fit, " + ", or ".join(single) + "."
    current, steps = settings, []
    for name, _ in _moves(settings):
        options = dict(_moves(current))[name]
        if not options:
            continue
        fitting = [o for o in options if _fits(o, windows, vocab_size, budgets, valid_windows)]
        current = fitting[0] if fitting else options[-1]
        value = _value(name, current)
        steps.append(f"{name} {value}" if value else name)
        if fitting:
            return "To fit, change several settings: " + ", ".join(steps) + "."
    return None


def budget_problem(cost: RunCost, settings: "TrainSettings", windows: int | None = None,
                   vocab_size: int | None = None, budgets: Budgets | None = None,
                   valid_windows: int | None = None) -> str | None:
    """A plain sentence when the run costs more than the server allows, else None.

    With `windows` and `vocab_size` (the data's size) it also says which setting to lower.
    """
    budgets = budgets or Budgets.from_env()
    over = _over(cost, budgets)
    if not over:
        return None
    sentence = "This run is too big for this server: " + "; ".join(over) + "."
    idea = suggestions(settings, windows, vocab_size, budgets, valid_windows) if windows else None
    if idea:
        return f"{sentence} {idea} A shorter corpus, or one with fewer different tokens, also helps."
    return (f"{sentence} Even the smallest model is too big for this corpus: use a shorter one, "
            "or one with fewer different tokens.")


def check_run(settings: "TrainSettings", windows: int, vocab_size: int,
              budgets: Budgets | None = None, valid_windows: int | None = None) -> RunCost:
    """The run's cost; raises `BudgetError` with the plain sentence when it does not fit.
    `valid_windows`: the held-out windows, when known (else estimated from the settings)."""
    cost = run_cost(settings, windows, vocab_size, valid_windows)
    problem = budget_problem(cost, settings, windows, vocab_size, budgets, valid_windows)
    if problem:
        raise BudgetError(problem)
    return cost


def settings_problems(settings: "TrainSettings") -> list[str]:
    """Settings outside what the Train page offers, in words (empty when all are in range).

    A model file from elsewhere must stay inside the same ranges as the page's controls.
    """
    s, problems = settings, []
    whole = lambda v: type(v) is int  # noqa: E731  (True is not a block size, nor 32.0 a width)
    if not whole(s.block_size) or s.block_size not in BLOCK_SIZES:
        problems.append(f"block size {s.block_size!r} is not a whole number from 1 to 16")
    if not whole(s.d_model) or s.d_model not in D_MODELS:
        problems.append(f"d_model {s.d_model!r} is not one of {', '.join(map(str, D_MODELS))}")
    if not whole(s.n_heads) or s.n_heads not in HEAD_CHOICES or (
            s.d_model in D_MODELS and s.d_model % s.n_heads):
        problems.append(f"{s.n_heads!r} heads do not fit d_model {s.d_model!r}")
    if not whole(s.epochs) or s.epochs not in EPOCHS:
        problems.append(f"epochs {s.epochs!r} is not a whole number from 10 to 2,000")
    if not whole(s.seed) or s.seed not in SEEDS:
        problems.append(f"seed {s.seed!r} is not a whole number from 0 to 1,000,000")
    if not any(isinstance(s.lr, float) and math.isclose(s.lr, lr) for lr in LEARNING_RATES):
        problems.append(f"learning rate {s.lr!r} is not one the page offers")
    if s.loss_on not in ("last", "every"):
        problems.append("loss on must be 'last' or 'every'")
    layers = getattr(s, "n_layers", 1)
    if not whole(layers) or layers not in LAYERS:
        problems.append(f"layers {layers!r} is not a whole number from 1 to {LAYERS[-1]}")
    batch = getattr(s, "batch_size", 0)
    if not whole(batch) or not (batch == 0 or batch in BATCH_SIZES):
        problems.append(f"batch size {batch!r} is not 0 (all windows) or one the page offers")
    share = getattr(s, "valid_share", 0.0)
    if not isinstance(share, float) or not 0 <= share <= MAX_VALID_SHARE:
        problems.append(f"the held-out share {share!r} is not from 0 to {MAX_VALID_SHARE:.0%}")
    if not isinstance(s.eos, bool) or not isinstance(s.causal, bool):
        problems.append("EOS and causal mask must be on or off")
    return problems
