"""Training in chunks, so a page can show progress between them.

The notebook's loop, one full-batch AdamW step per epoch:

    trainer = Trainer(model, dataset, lr=1e-3)
    trainer.run(300)                 # or: while not trainer.done: trainer.run(25); redraw()
    trainer.history[-1]              # the last loss

Each step is the notebook's: forward, loss, backward, AdamW step, and the loss goes into the
history (see `Trainer.run`). With ``batch_size`` each step learns from that many windows drawn
at random (seeded: the same seed draws the same batches); without it, from all of them, as
the notebook does. With a held-out dataset (``valid``) the trainer also measures the loss on
text it never trains on, every ``eval_every`` steps, into ``valid_history``. The learning
rate is constant, as in the notebook, unless ``lr_schedule`` is given: then step k (0 for
the first) uses ``lr * lr_schedule(k)``, as ``torch.optim.lr_scheduler.LambdaLR`` would.
AdamW's ``betas`` and ``weight_decay`` are torch's defaults (the notebook's) unless given;
they apply to every weight alike, on either path.

The trainer knows nothing about the UI: it reports through callbacks (minGPT style)
``on_step(trainer)`` after each step. It is deterministic for a given model seed. If the loss
becomes NaN or infinite (a learning rate far too high), it stops, puts back the best weights
it had (the lowest loss seen), and says so in `stopped_reason`.

Where a run can take it, the same step runs by a faster route (`minillm.fastpath`: gradients
written out by hand, AdamW over one flat tensor), with the same numbers.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Callable

import torch
from torch import optim

from minillm.data import Dataset
from minillm.fastpath import FastPath, flat_state, per_weight_state
from minillm.model import MiniTransformer

MAX_SNAPSHOTS = 12  # weights kept for replaying attention at earlier points of training
EVAL_ROWS = 4096  # held-out windows scored at once (bounds the memory of an evaluation)


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run with `n` torch threads (tiny tensors are fastest on one), then restore."""
    if n is None or torch.get_num_threads() == n:  # nothing to change (the app runs on one)
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class Trainer:
    def __init__(
        self,
        model: MiniTransformer,
        dataset: Dataset,
        lr: float = 1e-3,
        epochs: int = 300,
        threads: int | None = 1,
        snapshot_every: int | None = None,
        hand_gradients: bool = True,
        batch_size: int | None = None,
        seed: int = 0,
        valid: Dataset | None = None,
        eval_every: int | None = None,
        lr_schedule: Callable[[int], float] | None = None,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.01,
    ):
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError("the learning rate must be a positive number")
        if batch_size is not None and batch_size < 1:
            raise ValueError("the batch size must be at least 1")
        self.model, self.dataset, self.lr, self.epochs = model, dataset, lr, epochs
        self.threads, self.valid, self.lr_schedule = threads, valid, lr_schedule
        self.device = next(model.parameters()).device
        self.X, self.Y = dataset.X.to(self.device), dataset.Y.to(self.device)
        self.every_targets = (
            dataset.every_position_targets().to(self.device)
            if model.config.loss_on == "every" else None
        )
        self.batch_size = batch_size if batch_size and batch_size < len(self.Y) else None
        self._batches = torch.Generator(self.device).manual_seed(seed)  # this run's draws
        self.fast = (FastPath.for_run(model, self.X, self.Y, self.batch_size)
                     if hand_gradients else None)
        self._params = list(model.parameters())
        self._shapes = [p.shape for p in self._params]
        weights = self.fast.parameters() if self.fast else self._params
        self.optimizer = optim.AdamW(weights, lr=lr, betas=betas, weight_decay=weight_decay,
                                     fused=self.device.type in ("cpu", "cuda"))
        self.history: list[float] = []  # loss before each step (what the notebook printed)
        self.valid_history: list[tuple[int, float]] = []  # (epoch, held-out loss)
        self.eval_every = eval_every or max(1, epochs // 50)
        self.stopped_reason: str | None = None
        self.seconds = 0.0  # time spent training
        self.snapshot_every = snapshot_every or max(1, epochs // 10)
        self.snapshots: dict[int, dict[str, torch.Tensor]] = {}  # epoch -> weights
        # the weights of the lowest loss so far (the fast path: views of one flat copy)
        self._best_flat, self._best = (self.fast.best_buffers(self._params) if self.fast else
                                       (None, [p.detach().clone() for p in self._params]))
        self._best_loss = math.inf
        self._snapshot()
        if valid is not None:
            self._evaluate()

    def load_optimizer_state(self, state: dict) -> None:
        """Restore AdamW's running averages from ``optimizer.state_dict()`` of a saved run,
        saved by either path (one flat tensor, or one entry per weight)."""
        convert = flat_state if self.fast else per_weight_state
        state = convert(state, self._shapes)
        sizes = [p.numel() for p in self.optimizer.param_groups[0]["params"]]
        for entry in state["state"].values():
            for key in ("exp_avg", "exp_avg_sq"):
                if entry[key].numel() not in sizes:
                    raise ValueError("the optimizer state does not fit these weights")
        self.optimizer.load_state_dict(state)

    @property
    def epoch(self) -> int:
        return len(self.history)

    @property
    def done(self) -> bool:
        return self.stopped_reason is not None or self.epoch >= self.epochs

    @property
    def last_loss(self) -> float | None:
        return self.history[-1] if self.history else None

    @property
    def last_valid_loss(self) -> float | None:
        return self.valid_history[-1][1] if self.valid_history else None

    def _snapshot(self) -> None:
        # A new dict each time, never one changed in place: a page reading `snapshots` while
        # this run trains (Attention, in another thread) keeps a consistent view.
        snapshots = {**self.snapshots,
                     self.epoch: {k: v.detach().clone() for k, v in self.model.state_dict().items()}}
        if len(snapshots) > MAX_SNAPSHOTS:  # keep every other one, always the first
            snapshots = {e: snapshots[e] for e in sorted(snapshots)[::2]}
            self.snapshot_every *= 2
        self.snapshots = snapshots

    def _batch(self):
        """The windows this step learns from: all of them, or a seeded random batch."""
        if self.batch_size is None:
            return self.X, self.Y, self.every_targets
        rows = torch.randint(len(self.Y), (self.batch_size,), generator=self._batches,
                             device=self.device)
        every = self.every_targets[rows] if self.every_targets is not None else None
        return self.X[rows], self.Y[rows], every

    def _evaluate(self) -> None:
        self.valid_history.append((self.epoch, mean_loss(self.model, self.valid)))

    def run(self, steps: int | None = None, on_step: Callable[["Trainer"], None] | None = None):
        """Train for up to `steps` epochs (default: all that remain); returns their losses."""
        remaining = self.epochs - self.epoch
        steps = remaining if steps is None else min(steps, remaining)
        losses: list[float] = []
        if self.stopped_reason:
            return losses
        model = self.model
        if not all(module.training for module in model.modules()):
            model.train()  # (not every call: a chunk trains epoch by epoch, and it costs)
        start = time.perf_counter()
        with torch_threads(self.threads):
            for _ in range(steps):
                x, y, every = self._batch()
                if self.fast:  # forward and backward by hand: the same numbers, no autograd
                    loss = self.fast.loss_and_gradients(x, y, every)
                else:
                    loss = model.loss(x, y, every)  # forward: the mean cross-entropy
                value = loss.item()
                if not math.isfinite(value):
                    self._give_up(value)
                    break
                if value < self._best_loss:  # remember these weights (copied in place)
                    self._best_loss = value
                    if self.fast:
                        self._best_flat.copy_(self.fast.flat.detach())
                    else:
                        for best, p in zip(self._best, self._params):
                            best.copy_(p.detach())
                if not self.fast:
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()  # backward: d loss / d every weight
                if self.lr_schedule is not None:  # this step's learning rate
                    for group in self.optimizer.param_groups:
                        group["lr"] = self.lr * self.lr_schedule(self.epoch)
                if self.fast:  # the same step, straight to AdamW's fused kernel
                    self.fast.step(self.optimizer)
                else:
                    self.optimizer.step()  # AdamW: every weight a small step downhill
                self.history.append(value)
                losses.append(value)
                if self.epoch % self.snapshot_every == 0 or self.epoch == self.epochs:
                    self._snapshot()
                if self.valid is not None and (self.epoch % self.eval_every == 0
                                               or self.epoch == self.epochs):
                    self._evaluate()
                    model.train()
                if on_step is not None:
                    on_step(self)
        self.seconds += time.perf_counter() - start
        return losses

    def _give_up(self, value: float) -> None:
        with torch.no_grad():  # put back the best weights seen in this run
            for best, p in zip(self._best, self._params):
                p.copy_(best)
        self.stopped_reason = (
            f"The loss became {value} at epoch {self.epoch + 1}: the learning rate "
            f"{self.lr:g} is too high. Training stopped and kept the last good weights: "
            f"the best this run reached (loss {self._best_loss:.4g})."
        )


def mean_loss(model: MiniTransformer, dataset: Dataset, rows: int = EVAL_ROWS) -> float:
    """The model's mean loss on `dataset` for its objective, `rows` windows at a time."""
    model.eval()
    device = next(model.parameters()).device
    every = dataset.every_position_targets() if model.config.loss_on == "every" else None
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(dataset), rows):
            x = dataset.X[start : start + rows].to(device)
            y = dataset.Y[start : start + rows].to(device)
            targets = every[start : start + rows].to(device) if every is not None else None
            n = int((targets != -100).sum()) if targets is not None else len(y)
            if n:
                total += model.loss(x, y, targets).item() * n
                count += n
    return total / count if count else math.nan


def final_loss(model: MiniTransformer, dataset: Dataset) -> float:
    """The model's loss on the whole dataset now (after the last step)."""
    return mean_loss(model, dataset)


def honest_loss(model: MiniTransformer, dataset: Dataset) -> float:
    """The loss with later tokens hidden (causal mask on), as when the model writes new text.

    For a model trained on every position without the mask this is far above its training
    loss: it learned to read the answer from the next position instead of predicting it.
    """
    causal = model.config.causal
    model.config.causal = True
    try:
        return final_loss(model, dataset)
    finally:
        model.config.causal = causal


def learned_fraction(loss: float, floor: float, start: float) -> float:
    """How much of what can be learned has been learned: 0 at `start` (ln|V|), 1 at the floor."""
    if start <= floor:
        return 1.0
    return max(0.0, min(1.0, (start - loss) / (start - floor)))
