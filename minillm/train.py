"""Training in chunks, so a page can show progress between them.

The notebook's loop, one full-batch AdamW step per epoch:

    trainer = Trainer(model, dataset, lr=1e-3)
    trainer.run(300)                 # or: while not trainer.done: trainer.run(25); redraw()
    trainer.history[-1]              # the last loss

The trainer knows nothing about the UI: it reports through callbacks (minGPT style)
``on_step(trainer)`` after each step. It is deterministic for a given model seed (full batch,
no dropout). If the loss becomes NaN or infinite (a learning rate far too high), it stops,
puts back the best weights it had (the lowest loss seen), and says so in `stopped_reason`.

Speed (``bench/train_speed.py``): on the notebook's objective the gradients come from
``minillm.handgrad`` (the chain rule written out, equal to autograd's), and AdamW updates one
flat tensor that holds every weight (the same per-number maths, one call instead of sixteen).
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Callable

import torch
from torch import optim

from minillm.data import Dataset
from minillm.handgrad import LastPositionGrads
from minillm.model import MiniTransformer

MAX_SNAPSHOTS = 12  # weights kept for replaying attention at earlier points of training


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


def flatten_parameters(model: torch.nn.Module) -> torch.nn.Parameter:
    """Put every weight of `model` into one flat tensor and make the weights views of it.

    The model works as before (each weight keeps its shape and name); an optimizer given the
    flat tensor updates all of them in one go, which on tiny models saves most of its time.
    """
    params = list(model.parameters())
    flat = torch.nn.Parameter(torch.cat([p.detach().reshape(-1) for p in params]))
    offset = 0
    for p in params:
        p.data = flat.data[offset : offset + p.numel()].view_as(p)
        offset += p.numel()
    return flat


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
    ):
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError("the learning rate must be a positive number")
        self.model, self.dataset, self.lr, self.epochs = model, dataset, lr, epochs
        self.threads = threads
        # AdamW works weight by weight, so one flat tensor holding every weight gives the same
        # numbers as the notebook's per-parameter AdamW, in one fused kernel and one Python call.
        self._params = list(model.parameters())
        self._flat = flatten_parameters(model)
        self.optimizer = optim.AdamW([self._flat], lr=lr, fused=True)
        self.every_targets = (
            dataset.every_position_targets() if model.config.loss_on == "every" else None
        )
        # The notebook's objective has its gradients written out by hand (minillm.handgrad):
        # the same numbers as autograd, without its per-operation bookkeeping.
        self._hand = (
            LastPositionGrads(model, dataset.X, dataset.Y)
            if hand_gradients and model.config.loss_on == "last"
            else None
        )
        if self._hand is not None:
            self._flat.grad = self._hand.flat_grad  # it writes each step's gradients there
        self.history: list[float] = []  # loss before each step (what the notebook printed)
        self.stopped_reason: str | None = None
        self.seconds = 0.0  # time spent training
        self.snapshot_every = snapshot_every or max(1, epochs // 10)
        self.snapshots: dict[int, dict[str, torch.Tensor]] = {}  # epoch -> weights
        self._best = self._flat.detach().clone()  # the weights with the lowest loss so far
        self._best_loss = math.inf
        self._snapshot()

    def load_optimizer_state(self, state: dict) -> None:
        """Restore AdamW's running averages from ``optimizer.state_dict()`` of a saved run.

        Also takes files saved when each weight had its own optimizer entry (before the
        weights were packed into one flat tensor): their averages are joined in order.
        """
        groups, entries = state["param_groups"], state["state"]
        n = len(self._params)
        if n > 1 and len(groups) == 1 and len(groups[0]["params"]) == n:
            old = [entries.get(i) for i in range(n)]
            entries = {}
            if all(old):
                entries[0] = {
                    "step": old[0]["step"],
                    "exp_avg": torch.cat([e["exp_avg"].reshape(-1) for e in old]),
                    "exp_avg_sq": torch.cat([e["exp_avg_sq"].reshape(-1) for e in old]),
                }
            state = {"state": entries, "param_groups": [{**groups[0], "params": [0]}]}
        for entry in state["state"].values():
            for key in ("exp_avg", "exp_avg_sq"):
                if entry[key].shape != self._flat.shape:
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

    def _snapshot(self) -> None:
        # A new dict each time, never one changed in place: a page reading `snapshots` while
        # this run trains (Attention, in another thread) keeps a consistent view.
        snapshots = {**self.snapshots,
                     self.epoch: {k: v.detach().clone() for k, v in self.model.state_dict().items()}}
        if len(snapshots) > MAX_SNAPSHOTS:  # keep every other one, always the first
            snapshots = {e: snapshots[e] for e in sorted(snapshots)[::2]}
            self.snapshot_every *= 2
        self.snapshots = snapshots

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
                if self._hand is not None:
                    loss, grads = self._hand()
                else:
                    loss, grads = model.loss(X, Y, self.every_targets), None
                value = loss.item()
                if not math.isfinite(value):
                    with torch.no_grad():  # put back the best weights seen in this run
                        self._flat.copy_(self._best)
                    self.stopped_reason = (
                        f"The loss became {value} at epoch {self.epoch + 1}: the learning rate "
                        f"{self.lr:g} is too high. Training stopped and kept the last good weights: "
                        f"the best this run reached (loss {self._best_loss:.4g})."
                    )
                    break
                if value < self._best_loss:  # remember these weights (copied in place)
                    self._best_loss = value
                    self._best.copy_(self._flat.detach())
                if grads is None:  # autograd, then its gradients side by side like the weights
                    model.zero_grad(set_to_none=True)
                    loss.backward()
                    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self._params]
                    self._flat.grad = torch.cat([g.reshape(-1) for g in grads])
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
