"""The GPT fast path's matrix products, through oneDNN where torch has it.

Every x86 build of torch carries two libraries for float32 matrix products: MKL, which
``torch.mm`` and ``nn.Linear`` call, and oneDNN, behind torch's ``mkldnn`` operators. On
some processors they are far apart: on an AMD EPYC this project ran on, oneDNN did the
linear layers' products of a GPT step in less than half MKL's time (the README has the
figures). `Products` is the one place the fast path
(`minillm.fastpath.EveryPositionGrads`) asks for a product, and it answers with oneDNN when
torch has it and the product is float32 on the CPU, else with ``torch.mm`` and ``addmm``
into the step's own buffers (float64, a GPU, ``MINILLM_PRODUCTS=torch``).

The library is chosen by what torch has, never by timing: the same settings and seed give
the same numbers in every process of a machine (a timing could choose differently in two
workers of one class). Both libraries sum in float32; they round differently, as MKL does
from one processor to another, which is why the fast path's tests compare with a float32
tolerance (``tests/test_products.py``, ``tests/test_fastpath.py``).

oneDNN builds a kernel for each shape the first time it meets it (a few milliseconds) and
keeps it. The fast path computes a different number of rows in every batch (the rows
`SharedRows` does not share), so with oneDNN it rounds its row counts up to a multiple of
`ROWS` (`Products.rows`): a batch shape then meets a handful of kernels, all built in its
first steps. The extra rows cost a few per cent of the products; their gradients are
exactly zero, so they add nothing to any weight's gradient.
"""

from __future__ import annotations

import os

import torch

#: ``MINILLM_PRODUCTS=torch`` keeps every product on ``torch.mm`` (MKL), as before oneDNN.
ENV = "MINILLM_PRODUCTS"

#: With oneDNN, row counts are rounded up to a multiple of this (see the module's docstring).
ROWS = 64


def _onednn_linear():
    """oneDNN's linear product in this torch build, or None."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.mkldnn._linear_pointwise
    except (AttributeError, RuntimeError):  # a build without the operator
        return None


def onednn_usable(like: torch.Tensor, environ=os.environ) -> bool:
    """True when products of tensors like `like` go through oneDNN."""
    if environ.get(ENV, "").strip().lower() == "torch":
        return False
    if like.dtype != torch.float32 or like.device.type != "cpu":
        return False
    return _onednn_linear() is not None


class Products:
    """``x W^T + b`` and its two gradients, for weights stored as ``nn.Linear`` stores them
    (``W`` is (out, in)). Each method returns its result: with ``torch.mm`` it is written
    into ``out``, with oneDNN it is a new tensor (oneDNN writes only to its own)."""

    def __init__(self, like: torch.Tensor, environ=os.environ):
        self.onednn = onednn_usable(like, environ)
        if self.onednn:
            linear = _onednn_linear()
            self._linear, self._binary = linear.default, linear.binary

    def rows(self, m: int, limit: int, spare: bool = False) -> int:
        """How many rows to compute for `m` rows of work, in buffers of `limit` rows: `m`,
        or with oneDNN `m` rounded up to a multiple of `ROWS` (with at least one row past
        `m` if `spare`, and never more than `limit`)."""
        if not self.onednn:
            return m
        return min(-(-(m + spare) // ROWS) * ROWS, limit)

    def linear(self, x, w, b, out, relu: bool = False) -> torch.Tensor:
        """``x W^T + b`` (then the ReLU, if asked)."""
        if self.onednn:
            return self._linear(x, w, b, "relu" if relu else "none", [], "")
        torch.addmm(b, x, w.t(), out=out)
        return out.clamp_min_(0) if relu else out

    def linear_add(self, x, w, b, residual, out) -> torch.Tensor:
        """``residual + x W^T + b``: a layer that adds to the residual stream."""
        if self.onednn:
            return self._binary(x, residual, w, b, "add")
        torch.addmm(residual, x, w.t(), out=out)
        return out.add_(b)

    def grad_input(self, dy, w, out) -> torch.Tensor:
        """``dy W``: the gradient that reaches the layer's input."""
        if self.onednn:
            return self._linear(dy, w.t(), None, "none", [], "")
        return torch.mm(dy, w, out=out)

    def grad_weight(self, dy, x, out) -> torch.Tensor:
        """``dy^T x`` into `out` (the weight's gradient, shaped like ``W``)."""
        if not self.onednn:
            return torch.mm(dy.t(), x, out=out)
        # Both inputs are read across their rows (the batch is the long side of the sum).
        # oneDNN is faster with the narrower of the two results' sides first.
        if out.shape[0] <= out.shape[1]:
            return out.copy_(self._linear(dy.t(), x.t(), None, "none", [], ""))
        return out.copy_(self._linear(x.t(), dy.t(), None, "none", [], "").t())
