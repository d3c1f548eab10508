"""The Trainer's fast path: the same numbers as its plain loop, with less bookkeeping.

`minillm.train.Trainer` reads like the notebook (forward, loss, backward, step, history).
Everything it does only for speed lives here, behind one seam, `FastPath.for_run`, which says
whether a run can take it and otherwise gives None (the Trainer then runs the plain loop):

- **Hand-written gradients** (`minillm.handgrad.LastPositionGrads`) for the notebook's own
  objective: the loss on the last position, full batch, one layer. The chain rule written
  out, without autograd's per-operation records (``tests/test_handgrad.py`` holds it equal
  to autograd).
- **AdamW over one flat tensor** (`flatten_parameters`): every weight a view of one tensor,
  so the optimizer updates all of them in one call. AdamW works number by number, so the
  result equals the per-weight AdamW of the plain loop.
- **Optimizer states in either layout** (`flat_state` / `per_weight_state`): a saved run
  from either path loads into the other.
"""

from __future__ import annotations

import torch

from minillm.handgrad import LastPositionGrads
from minillm.model import MiniTransformer


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


class FastPath:
    """Hand gradients into a flat gradient buffer, for an optimizer over the flat weights."""

    def __init__(self, model: MiniTransformer, X: torch.Tensor, Y: torch.Tensor):
        self.flat = flatten_parameters(model)
        self.grads = LastPositionGrads(model, X, Y)  # views of the flat weights, made after
        self.flat.grad = self.grads.flat_grad  # each call writes the step's gradients here

    @classmethod
    def for_run(cls, model: MiniTransformer, X, Y, batch_size: int | None) -> "FastPath | None":
        """The fast path if this run can take it, else None."""
        config = model.config
        if config.loss_on == "last" and config.n_layers == 1 and not batch_size:
            return cls(model, X, Y)
        return None

    def loss_and_gradients(self) -> torch.Tensor:
        """The full-batch loss (a 0-d tensor); its gradients are in ``self.flat.grad``."""
        loss, _ = self.grads()
        return loss

    def parameters(self) -> list[torch.nn.Parameter]:
        return [self.flat]


def flat_state(state: dict, shapes: list[torch.Size]) -> dict:
    """An AdamW state dict for one flat tensor, from either layout."""
    groups, entries = state["param_groups"], state["state"]
    if len(groups) != 1:
        raise ValueError("the optimizer state has an unexpected layout")
    if len(groups[0]["params"]) == 1:
        return state
    if len(groups[0]["params"]) != len(shapes):
        raise ValueError("the optimizer state does not fit these weights")
    old = [entries.get(i) for i in range(len(shapes))]
    joined = {}
    if all(old):
        joined[0] = {
            "step": old[0]["step"],
            "exp_avg": torch.cat([e["exp_avg"].reshape(-1) for e in old]),
            "exp_avg_sq": torch.cat([e["exp_avg_sq"].reshape(-1) for e in old]),
        }
    return {"state": joined, "param_groups": [{**groups[0], "params": [0]}]}


def per_weight_state(state: dict, shapes: list[torch.Size]) -> dict:
    """An AdamW state dict with one entry per weight, from either layout."""
    groups, entries = state["param_groups"], state["state"]
    if len(groups) != 1:
        raise ValueError("the optimizer state has an unexpected layout")
    if len(groups[0]["params"]) == len(shapes) and len(shapes) != 1:
        return state
    if len(groups[0]["params"]) != 1:
        raise ValueError("the optimizer state does not fit these weights")
    split, entry = {}, entries.get(0)
    if entry is not None:
        sizes = [s.numel() for s in shapes]
        if entry["exp_avg"].numel() != sum(sizes):
            raise ValueError("the optimizer state does not fit these weights")
        avgs = entry["exp_avg"].split(sizes)
        squares = entry["exp_avg_sq"].split(sizes)
        for i, shape in enumerate(shapes):
            split[i] = {"step": entry["step"].clone() if torch.is_tensor(entry["step"]) else entry["step"],
                        "exp_avg": avgs[i].reshape(shape).clone(),
                        "exp_avg_sq": squares[i].reshape(shape).clone()}
    return {"state": split, "param_groups": [{**groups[0], "params": list(range(len(shapes)))}]}
