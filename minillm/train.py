"""Training in chunks, so a page can show progress between them.

The notebook's loop, one full-batch AdamW step per epoch:

    trainer = Trainer(model, dataset, lr=1e-3)
    trainer.run(300)                 # or: while not trainer.done: trainer.run(25); redraw()
    trainer.history[-1]              # the last loss

The trainer knows nothing about the UI: it reports through callbacks (minGPT style)
``on_step(trainer)`` after each step. It is deterministic for a given model seed (full batch,
no dropout). If the loss becomes NaN or infinite (a learning rate far too high), it stops,
puts back the best weights it had (the lowest loss seen), and says so in `stopped_reason`.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Callable

import torch
from torch import optim

from minillm.data import Dataset
from minillm.model import MiniTransformer

MAX_SNAPSHOTS = 12  # weights kept for replaying attention at earlier points of training


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run with `n` torch threads (tiny tensors are fastest on one), then restore."""
    if n is None:
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
    ):
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError("the learning rate must be a positive number")
        self.model, self.dataset, self.lr, self.epochs = model, dataset, lr, epochs
        self.threads = threads
        # fused: one kernel for all parameters instead of a loop of small ones (same maths)
        self.optimizer = optim.AdamW(model.parameters(), lr=lr, fused=True)
        self.every_targets = (
            dataset.every_position_targets() if model.config.loss_on == "every" else None
        )
        self.history: list[float] = []  # loss before each step (what the notebook printed)
        self.stopped_reason: str | None = None
        self.seconds = 0.0  # time spent training
        self.snapshot_every = snapshot_every or max(1, epochs // 10)
        self.snapshots: dict[int, dict[str, torch.Tensor]] = {}  # epoch -> weights
        self._best = [p.detach().clone() for p in model.parameters()]  # lowest loss so far
        self._best_loss = math.inf
        self._snapshot()

    @property
    def epoch(self) -> int:
        return len(self.history)

    @property
    def done(self) -> bool:
        return self.stopped_reason is not None or self.epoch >= self.epochs

    @property
    def last_loss(self) -> float | None:
        return self.history[-1] if self.history else None

    def _snapshot(self) -> None:
        self.snapshots[self.epoch] = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        if len(self.snapshots) > MAX_SNAPSHOTS:  # keep every other one, always the first
            kept = sorted(self.snapshots)[::2]
            self.snapshots = {e: self.snapshots[e] for e in kept}
            self.snapshot_every *= 2

    def run(self, steps: int | None = None, on_step: Callable[["Trainer"], None] | None = None):
        """Train for up to `steps` epochs (default: all that remain); returns their losses."""
        remaining = self.epochs - self.epoch
        steps = remaining if steps is None else min(steps, remaining)
        losses: list[float] = []
        if self.stopped_reason:
            return losses
        model, X, Y = self.model, self.dataset.X, self.dataset.Y
        model.train()
        start = time.perf_counter()
        with torch_threads(self.threads):
            for _ in range(steps):
                loss = model.loss(X, Y, self.every_targets)
                value = loss.item()
                if not math.isfinite(value):
                    with torch.no_grad():  # put back the best weights seen in this run
                        for p, best in zip(model.parameters(), self._best):
                            p.copy_(best)
                    self.stopped_reason = (
                        f"The loss became {value} at epoch {self.epoch + 1}: the learning rate "
                        f"{self.lr:g} is too high. Training stopped and kept the last good weights: "
                        f"the best this run reached (loss {self._best_loss:.4g})."
                    )
                    break
                if value < self._best_loss:  # remember these weights (copied in place)
                    self._best_loss = value
                    with torch.no_grad():
                        torch._foreach_copy_(self._best, list(model.parameters()))
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                self.history.append(value)
                losses.append(value)
                if self.epoch % self.snapshot_every == 0 or self.epoch == self.epochs:
                    self._snapshot()
                if on_step is not None:
                    on_step(self)
        self.seconds += time.perf_counter() - start
        return losses


def final_loss(model: MiniTransformer, dataset: Dataset) -> float:
    """The model's loss on the whole dataset now (after the last step)."""
    model.eval()
    targets = dataset.every_position_targets() if model.config.loss_on == "every" else None
    with torch.no_grad():
        return model.loss(dataset.X, dataset.Y, targets).item()


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
