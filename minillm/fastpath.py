"""The Trainer's fast path: the same numbers as its plain loop, with less bookkeeping.

`minillm.train.Trainer` reads like the notebook (forward, loss, backward, step, history).
Everything it does only for speed lives here, behind one seam, `FastPath.for_run`, which says
whether a run can take it and otherwise gives None (the Trainer then runs the plain loop):

- **Hand-written gradients** (`minillm.handgrad.LastPositionGrads`) for the notebook's own
  objective: the loss on the last position, full batch, one layer. The chain rule written
  out, without autograd's per-operation records (``tests/test_handgrad.py`` holds it equal
  to autograd).
- **Hand-written gradients for the GPT objective** (`EveryPositionGrads`): every position
  scored, mini-batches, any number of layers, with or without the causal mask. The forward
  pass and the chain rule written out with the modules' own weights, into buffers allocated
  once, the attention as plain batched products and one softmax per layer (what
  ``nn.MultiheadAttention`` computes, without its checks and re-layouts; each move between
  the rows' layout and the heads' is one gather, with no full-size copy in between). Work
  that would repeat numbers already computed is skipped, never approximated (`SharedRows`):
  with the causal mask a position's numbers depend only on the tokens up to it, so the left padding
  that several windows of a batch begin with is computed once; and the first layer's
  LayerNorm and query/key/value projection see only a position's token and place, so they
  run once per distinct (token, position). ``tests/test_fastpath.py`` holds the losses and
  weights of 30 steps equal to the plain autograd loop.
- **The linear layers' products through oneDNN** (`minillm.products.Products`): float32 on
  the CPU, the GPT path's products go through oneDNN (behind torch's ``mkldnn`` operators),
  which on some processors takes half MKL's time (``torch.mm``'s library, and the
  plain loop's); elsewhere through ``torch.mm`` as before. ``tests/test_products.py`` holds
  the path's gradients equal to autograd's through it.
- **AdamW over one flat tensor** (`flatten_parameters`): every weight a view of one tensor,
  so the optimizer updates all of them in one call. AdamW works number by number, so the
  result equals the per-weight AdamW of the plain loop.
- **AdamW's step straight to its kernel** (`adamw_step`): `torch.optim.AdamW(fused=True)`
  ends in one fused kernel over all the weights; around it, each call spends several times
  the kernel's own time on hooks, profiler records and regrouping the tensors by device. On
  the notebook's model that was a quarter of an epoch. The step calls the same kernel with
  the same arguments (the first step, which creates the averages, and anything unusual still
  go through ``optimizer.step()``), so the numbers are bit for bit the same.
- **The best weights in one copy** (`best_buffers`): the Trainer keeps the weights of its
  lowest loss; as views of one flat tensor they are saved by one copy, not one per weight.
- **Optimizer states in either layout** (`flat_state` / `per_weight_state`): a saved run
  from either path loads into the other.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from minillm.data import IGNORE
from minillm.handgrad import LastPositionGrads
from minillm.model import MiniTransformer
from minillm.products import Products

aten = torch.ops.aten


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


def adamw_step(optimizer: torch.optim.AdamW) -> None:
    """``optimizer.step()``, for a fused AdamW: its kernel called directly when it can be.

    What `torch.optim.AdamW.step` does for one group with ``fused=True`` once its state
    exists: add one to each weight's step count, then ``torch._fused_adamw_`` with the
    group's settings. Anything else (the first step, AMSGrad, maximize, a capturable or
    differentiable optimizer, a weight without a gradient, a learning rate given as a tensor,
    gradient scaling) takes ``optimizer.step()`` itself.
    """
    groups = optimizer.param_groups
    group = groups[0]
    if (len(groups) != 1 or not group.get("fused") or group["amsgrad"] or group["maximize"]
            or group["capturable"] or group["differentiable"]
            or not group.get("decoupled_weight_decay", True)
            or isinstance(group["lr"], torch.Tensor)):
        optimizer.step()
        return
    params, state = group["params"], optimizer.state
    entries = [state.get(p) for p in params]
    if not all(entries) or any(p.grad is None for p in params):
        optimizer.step()  # the first step creates the averages and the step counts
        return
    steps = [e["step"] for e in entries]
    beta1, beta2 = group["betas"]
    torch._foreach_add_(steps, 1)
    torch._fused_adamw_(params, [p.grad for p in params], [e["exp_avg"] for e in entries],
                        [e["exp_avg_sq"] for e in entries], [], steps, amsgrad=False,
                        lr=group["lr"], beta1=beta1, beta2=beta2,
                        weight_decay=group["weight_decay"], eps=group["eps"], maximize=False,
                        grad_scale=None, found_inf=None)


def best_buffers(flat: torch.Tensor, params: list[torch.Tensor]) -> tuple[torch.Tensor, list]:
    """A copy of the flat weights, and a view of it shaped like each weight (in order)."""
    copy = flat.detach().clone()
    views, offset = [], 0
    for p in params:
        views.append(copy[offset : offset + p.numel()].view_as(p))
        offset += p.numel()
    return copy, views


class _FlatWeights:
    """What both hand-gradient paths share: the flat weights, their step, their best copy."""

    flat: torch.nn.Parameter

    def parameters(self) -> list[torch.nn.Parameter]:
        return [self.flat]

    def step(self, optimizer: torch.optim.AdamW) -> None:
        adamw_step(optimizer)

    def best_buffers(self, params: list[torch.Tensor]) -> tuple[torch.Tensor, list]:
        return best_buffers(self.flat, params)


class FastPath(_FlatWeights):
    """Hand gradients into a flat gradient buffer, for an optimizer over the flat weights."""

    def __init__(self, model: MiniTransformer, X: torch.Tensor, Y: torch.Tensor):
        self.flat = flatten_parameters(model)
        self.grads = LastPositionGrads(model, X, Y)  # views of the flat weights, made after
        self.flat.grad = self.grads.flat_grad  # each call writes the step's gradients here

    @classmethod
    def for_run(cls, model: MiniTransformer, X, Y, batch_size: int | None):
        """The fast path if this run can take it, else None (the plain loop).

        - the notebook's objective (the last position), full batch, one layer: `FastPath`;
        - every position scored (GPT style), mini-batches, any number of layers, on the CPU:
          `EveryPositionPath`;
        - anything else (every position on the full batch, the last position with
          mini-batches or more layers, another device, modules of another kind): None.
        """
        config = model.config
        if config.loss_on == "last" and config.n_layers == 1 and not batch_size:
            return cls(model, X, Y)
        if (config.loss_on == "every" and batch_size and X.device.type == "cpu"
                and EveryPositionGrads.fits(model)):
            return EveryPositionPath(model)
        return None

    def loss_and_gradients(self, x=None, y=None, every_targets=None) -> torch.Tensor:
        """The full-batch loss (a 0-d tensor); its gradients are in ``self.flat.grad``.
        The batch is always every window given at the start (the arguments are not used)."""
        loss, _ = self.grads()
        return loss


class SharedRows:
    """Which (window, position) pairs of a batch a step computes, and where each one reads.

    With the causal mask, what a position holds in every layer depends only on the tokens up
    to it. Windows near the start of their lines begin with a run of the same token (the left
    padding); two windows that begin with the same token agree up to the shorter of the two
    runs, so there they hold the same numbers: those positions are computed once, in the
    first such window of the batch, and the others read them from there. (Without the mask
    every position sees its whole window and nothing is shared.)

    The compact arrays have one row per computed (window, position), in the batch's order:
    ``row_from_full[r]`` is row r's place ``b * T + t``, and ``full_to_row[b * T + t]`` the
    row that place reads (None when nothing is shared: then row = place).

    The first layer's LayerNorm and query/key/value projection see only a position's own
    token and place, so they run once per distinct (token, position): ``first_of[r]`` is row
    r's, ``first_tokens`` and ``first_positions`` say what each one is, and
    ``full_to_first`` maps every place of the batch straight to its (token, position).
    """

    def __init__(self, x: torch.Tensor, causal: bool):
        B, T = x.shape
        N = B * T
        place = torch.arange(N, device=x.device)  # b * T + t
        flat = x.reshape(-1)
        # Each place's (token, position): what the first layer sees. The keys index a table
        # (one entry per token and position) when it is small, else they are sorted.
        key = torch.add(place % T, flat, alpha=T)
        n_keys = (int(flat.max()) + 1) * T if N else 0
        dense = n_keys <= 8 * N + 4096
        if causal:
            # The leading run of each window: its first token, repeated. Place (b, t) in it
            # holds the same numbers as place (a, t) of any window a whose leading run is of
            # the same token and longer than t; it reads the first such window's row (the
            # first place of the batch with that (token, position) inside a leading run).
            lead = (x != x[:, :1]).cumsum(1).view(-1) == 0
            if dense:
                lead_key = torch.where(lead, key, n_keys)  # n_keys: outside every leading run
                first = torch.full((n_keys + 1,), N, dtype=place.dtype, device=x.device)
                first.scatter_reduce_(0, lead_key, place, "amin")
                reads = torch.where(lead, first.index_select(0, lead_key), place)
            else:
                lead_key = torch.where(lead, key, -1 - place)  # distinct outside the runs
                _, inverse = torch.unique(lead_key, return_inverse=True)
                first = torch.full((N,), N, dtype=place.dtype, device=x.device)
                first.scatter_reduce_(0, inverse, place, "amin")
                reads = first.index_select(0, inverse)
            self.own = reads == place  # (N,): computed in its own window
            self.shared = not bool(self.own.all())
        else:
            self.shared = False
        if self.shared:
            self.row_from_full = self.own.nonzero()[:, 0]
            rank = self.own.cumsum(0).sub_(1)  # each computed place's row
            self.full_to_row = rank.index_select(0, reads)
            self.others = (~self.own).nonzero()[:, 0]  # the places that only read a row
        else:
            self.row_from_full = place
            self.full_to_row = None
        self.M = len(self.row_from_full)
        # The first layer: one row per distinct (token, position), in ascending order.
        if dense:
            present = torch.zeros(n_keys, dtype=place.dtype, device=x.device)
            present.index_fill_(0, key, 1)
            pairs = present.nonzero()[:, 0]
            self.full_to_first = present.cumsum_(0).sub_(1).index_select(0, key)
        else:
            pairs, self.full_to_first = torch.unique(key, return_inverse=True)
        self.first_tokens, self.first_positions = pairs // T, pairs % T
        self.first_of = (self.full_to_first.index_select(0, self.row_from_full) if self.shared
                         else self.full_to_first)
        # Each (token, position)'s first place in the batch, and the places after it
        # (their keys' and values' gradients add up in the first one's row).
        first_place = torch.full((len(pairs),), N, dtype=place.dtype, device=x.device)
        first_place.scatter_reduce_(0, self.full_to_first, place, "amin")
        self.first_place = first_place
        later = torch.ones(N, dtype=torch.bool, device=x.device)
        later.index_fill_(0, first_place, False)
        self.first_others = later.nonzero()[:, 0]

    def rows_of(self, places: torch.Tensor) -> torch.Tensor:
        """The row each place (``b * T + t``) reads."""
        return places if self.full_to_row is None else self.full_to_row[places]


class _Workspace:
    """The tensors one step writes, allocated once for a batch shape and reused."""

    def __init__(self, n_layers: int, B: int, T: int, d: int, H: int, V: int, like: torch.Tensor,
                 products_write: bool = True):
        N, BH, hs = B * T, B * H, d // H

        def new(*shape):  # zeros: rows past the ones a step writes must hold finite numbers
            return torch.zeros(shape, dtype=like.dtype, device=like.device)

        def out(*shape):  # what a linear product writes: None where oneDNN makes its own
            return new(*shape) if products_write else None

        self.shape = (B, T)
        # the residual stream into each layer (the first gathered from the embeddings)
        self.h = [new(N, d)] + [out(N, d) for _ in range(n_layers)]
        self.h1 = [out(N, d) for _ in range(n_layers)]  # after the attention's residual
        self.r = [out(N, 4 * d) for _ in range(n_layers)]  # feed-forward, after the ReLU
        self.ocat = [new(N, d) for _ in range(n_layers)]  # the heads' outputs side by side
        self.heads = [new(3, BH, T, hs) for _ in range(n_layers)]  # q, k, v per (window, head)
        self.probs = [new(BH, T, T) for _ in range(n_layers)]  # attention weights
        self.saved = [None] * n_layers  # the LayerNorms' inputs, outputs and statistics
        self.qkv, self.dqkv = out(N, 3 * d), new(N, 3 * d)
        self.o, self.do = new(BH, T, hs), new(BH, T, hs)
        self.dheads, self.dprobs = new(3, BH, T, hs), new(BH, T, T)
        self.logits, self.dlogits = out(N, V), new(N, V)
        # dn has a spare row: kept at zero, it is what a place that takes no gradient reads
        self.dh, self.dn, self.dr = out(N, d), out(N + 1, d), out(N, 4 * d)
        self.mask = torch.full((T, T), -math.inf, dtype=like.dtype, device=like.device).triu_(1)
        # The views a step takes of these, taken once (a view costs more than it seems).
        self.qkv_views = [(*hd, hd[1].transpose(1, 2), hd[2].transpose(1, 2)) for hd in self.heads]
        self.heads_rows = [hd.view(-1, hs) for hd in self.heads]
        self.probs_t = [p.transpose(1, 2) for p in self.probs]
        self.o_rows, self.do_rows = self.o.view(-1, hs), self.do.view(-1, hs)
        self.dq, self.dk, self.dv = self.dheads
        self.dprobs_t = self.dprobs.transpose(1, 2)
        # Index tables of the re-layouts (`_Places`), fixed for a batch shape.
        self.H = H
        i = lambda n: torch.arange(n, device=like.device)  # noqa: E731
        b, t, h, c = i(B).view(B, 1), i(T).view(1, T), i(H), i(3)
        place_b, place_t = (b + 0 * t).reshape(-1), (t + 0 * b).reshape(-1)  # of b * T + t
        self.heads_base = (c.view(3, 1, 1, 1) * H + h.view(1, 1, H, 1))
        self.o_table = ((place_b * H)[:, None] + h) * T + place_t[:, None]  # (N, H)
        self.h_col = h.view(1, H, 1)
        # src[p, c, h]: where place p's q, k or v of head h sits in (3, B * H, T, hs)
        self.src = (((c.view(1, 3, 1) * B + place_b.view(N, 1, 1)) * H + h.view(1, 1, H)) * T
                    + place_t.view(N, 1, 1))


def _rows(buffer: torch.Tensor | None, n: int) -> torch.Tensor | None:
    """The first `n` rows of a step's output buffer (None where oneDNN makes its own)."""
    return None if buffer is None else buffer[:n]


class _Layer:
    """One block's weights and the views of the flat gradient they write to, looked up once
    (a step reads them over and over, and a module attribute look-up costs more than the
    maths on the smallest tensors)."""

    def __init__(self, block: nn.Module, grad):
        attn, ff = block.attn, block.ff
        self.ln1, self.ln2 = block.ln1, block.ln2
        self.ln1_w, self.ln1_b, self.ln1_eps = block.ln1.weight, block.ln1.bias, block.ln1.eps
        self.ln2_w, self.ln2_b, self.ln2_eps = block.ln2.weight, block.ln2.bias, block.ln2.eps
        self.w_in, self.b_in = attn.in_proj_weight, attn.in_proj_bias
        self.w_out, self.b_out = attn.out_proj.weight, attn.out_proj.bias
        self.w1, self.b1, self.w2, self.b2 = ff[0].weight, ff[0].bias, ff[2].weight, ff[2].bias
        self.g_ln1_w, self.g_ln1_b = grad(self.ln1_w), grad(self.ln1_b)
        self.g_ln2_w, self.g_ln2_b = grad(self.ln2_w), grad(self.ln2_b)
        self.g_w_in, self.g_b_in = grad(self.w_in), grad(self.b_in)
        self.g_w_out, self.g_b_out = grad(self.w_out), grad(self.b_out)
        self.g_w1, self.g_b1 = grad(self.w1), grad(self.b1)
        self.g_w2, self.g_b2 = grad(self.w2), grad(self.b2)


class _Places:
    """Where each step's re-layouts read, for the rows `SharedRows` computes: one gather
    each, straight between the row layout (row, head, dimension) and the per-head layout
    (window, head, position, dimension) the attention's batched products work in. The
    index tables that depend only on the batch's shape are made once (`_Workspace`)."""

    def __init__(self, rows: SharedRows, ws: "_Workspace"):
        self.rows, self.ws = rows, ws
        B, T = ws.shape
        H = ws.H
        if rows.shared:
            # ocat (row, head) reads o (window, head, position)
            self.o_index = ws.o_table.index_select(0, rows.row_from_full).view(-1)
            # do (window, head, position) reads dn (row, head), or dn's zero row (row M)
            # where a place only reads another window's row: it asks no question there
            row = torch.where(rows.own, rows.full_to_row, rows.M).view(B, 1, T)
            self.do_index = torch.add(ws.h_col, row, alpha=H).view(-1)

    def heads_index(self, reads: torch.Tensor) -> torch.Tensor:
        """q, k, v (3, window, head, position) of every place, read from the packed
        projection's rows (row, 3, head): place b * T + t reads row ``reads[b * T + t]``."""
        B, T = self.ws.shape
        return torch.add(self.ws.heads_base, reads.view(1, B, 1, T), alpha=3 * self.ws.H).view(-1)

    def add_up(self, dheads: torch.Tensor, first: bool, out: torch.Tensor) -> None:
        """The gradients of q, k, v at every place (``dheads``, per head), added up in the
        rows the places read (``out``, (row, 3 * d)): each row's first place is gathered
        there, then the places after it that read it are added, in the batch's order (the
        order in which autograd's sums, and a zeroed index_add_, add them)."""
        rows, src = self.rows, self.ws.src
        if first:
            lead, later, reads = rows.first_place, rows.first_others, rows.full_to_first
        else:
            lead, later, reads = rows.row_from_full, rows.others, rows.full_to_row
        flat = dheads.view(-1, dheads.shape[-1])
        torch.index_select(flat, 0, src.index_select(0, lead).view(-1), out=out.view(-1, flat.shape[1]))
        if len(later):
            extra = flat.index_select(0, src.index_select(0, later).view(-1))
            out.index_add_(0, reads.index_select(0, later), extra.view(len(later), -1))


class EveryPositionGrads:
    """The every-position (GPT) loss of a batch and its gradients, written out by hand.

    Built once per model, after the weights are in their final tensors (it keeps them, and
    the optimizer updates them in place). Calling it with a batch of windows x (B, T) and
    their targets (B, T, IGNORE where there is none) returns the loss (a 0-d tensor) and
    writes d loss / d every weight into ``flat_grad`` (in ``model.parameters()`` order;
    ``gradients`` holds a view of it per weight): up to float rounding, what
    ``model.loss(x, None, targets).backward()`` gives. Any number of layers; the model's own
    ``config.causal`` is read at each call.

    The forward pass, per layer, is the model's: LayerNorm, the packed query/key/value
    projection, per head softmax(q k^T / sqrt(hs) + mask) v, the output projection and its
    residual, LayerNorm, Linear-ReLU-Linear and its residual; then the LM head and the
    cross-entropy over the scored positions. The backward pass is the chain rule through the
    same steps in reverse, with the tensors the forward pass kept. Rows that would repeat
    numbers already computed are computed once (`SharedRows`); gradients that reach a shared
    row from several windows are added up there, as autograd adds them along the graph.
    """

    def __init__(self, model: MiniTransformer):
        self.model = model
        params = list(model.parameters())
        self.flat_grad = torch.zeros(sum(p.numel() for p in params),
                                     dtype=params[0].dtype, device=params[0].device)
        self.gradients, self._index, offset = [], {}, 0
        for i, p in enumerate(params):
            self.gradients.append(self.flat_grad[offset : offset + p.numel()].view_as(p))
            self._index[id(p)] = i
            offset += p.numel()
        self._ws: _Workspace | None = None
        self.products = Products(params[0])  # the linear layers' library (`minillm.products`)
        self._layers = [_Layer(block, self._grad) for block in model.blocks()]
        head = model.lm_head
        self._head = (head.weight, head.bias, self._grad(head.weight), self._grad(head.bias))
        self._embed = (model.token_embed.weight, model.pos_embed.weight,
                       self._grad(model.token_embed.weight), self._grad(model.pos_embed.weight))

    @staticmethod
    def fits(model: MiniTransformer) -> bool:
        """True when every module is one this path writes out (the engine's always are)."""
        params = list(model.parameters())
        if not params or not all(p.requires_grad and p.dtype.is_floating_point for p in params):
            return False
        if len({p.dtype for p in params}) != 1 or model.lm_head.bias is None:
            return False
        for block in model.blocks():
            attn, ff = block.attn, block.ff
            if not (isinstance(attn, nn.MultiheadAttention) and attn.batch_first
                    and attn._qkv_same_embed_dim and attn.in_proj_bias is not None
                    and attn.out_proj.bias is not None and attn.bias_k is None
                    and not attn.add_zero_attn and attn.dropout == 0):
                return False
            if not (isinstance(ff, nn.Sequential) and len(ff) == 3
                    and isinstance(ff[0], nn.Linear) and isinstance(ff[1], nn.ReLU)
                    and isinstance(ff[2], nn.Linear)
                    and ff[0].bias is not None and ff[2].bias is not None):
                return False
            for norm in (block.ln1, block.ln2):
                if norm.weight is None or norm.bias is None:
                    return False
        return True

    def _grad(self, p: torch.Tensor) -> torch.Tensor:
        return self.gradients[self._index[id(p)]]

    def __call__(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        model, config = self.model, self.model.config
        B, T = x.shape
        N = B * T
        d, H = config.d_model, config.n_heads
        hs = d // H
        layers = self._layers
        head = model.lm_head
        ws, P = self._ws, self.products
        if ws is None or ws.shape != (B, T):
            ws = self._ws = _Workspace(len(layers), B, T, d, H, head.weight.shape[0], head.weight,
                                       products_write=not P.onednn)
        causal = config.causal
        rows = SharedRows(x, causal)
        places = _Places(rows, ws)
        M, scale = rows.M, 1 / math.sqrt(hs)
        # The rows each product computes (`Products.rows`): M, or with oneDNN M rounded up,
        # keeping a row past M for dn's zero row (what a place that only reads asks for).
        # Every row past M holds finite numbers and, in the backward pass, exact zeros.
        Mp = P.rows(M, N, spare=rows.shared)
        n_first = len(rows.first_tokens)
        n_first_p = P.rows(n_first, N)
        flat_targets = targets.reshape(-1)
        scored = (flat_targets != IGNORE).nonzero()[:, 0]
        wanted = flat_targets.index_select(0, scored)
        scored_rows = scored if rows.full_to_row is None else rows.full_to_row.index_select(0, scored)
        with torch.no_grad():
            # ---- forward: embeddings, once per distinct (token, position), then per row
            tok, pos, g_tok, g_pos = self._embed
            first_tokens, first_positions = rows.first_tokens, rows.first_positions
            if n_first_p > n_first:  # extra rows of token 0 at position 0: finite, unused
                first_tokens = torch.nn.functional.pad(first_tokens, (0, n_first_p - n_first))
                first_positions = torch.nn.functional.pad(first_positions, (0, n_first_p - n_first))
            e = tok.index_select(0, first_tokens)
            e.add_(pos.index_select(0, first_positions))
            h = ws.h[0][:Mp]
            torch.index_select(e, 0, rows.first_of, out=h[:M])
            for l, L in enumerate(layers):
                # The first layer's LayerNorm and projection run on the distinct embeddings.
                x_in, reads = (e, rows.full_to_first) if l == 0 else (h, rows.full_to_row)
                a, mean1, rstd1 = torch.native_layer_norm(x_in, (d,), L.ln1_w, L.ln1_b, L.ln1_eps)
                qkv = P.linear(a, L.w_in, L.b_in, out=_rows(ws.qkv, len(a)))
                heads = ws.heads[l]  # (3, B * H, T, hs): q, k, v of each (window, head)
                if reads is None:
                    heads.view(3, B, H, T, hs).copy_(qkv.view(B, T, 3, H, hs).permute(2, 0, 3, 1, 4))
                else:  # each place's q, k, v straight from the row it reads
                    torch.index_select(qkv.view(-1, hs), 0, places.heads_index(reads),
                                       out=ws.heads_rows[l])
                q, k, v, kt, _ = ws.qkv_views[l]
                probs = ws.probs[l]
                # scores q k^T / sqrt(hs), then -inf where a later position would be seen (the
                # mask added after the product: as baddbmm's input it is first copied into every
                # (window, head), a broadcast copy that costs more than the add)
                torch.baddbmm(probs, q, kt, beta=0, alpha=scale, out=probs)
                if causal:
                    probs.add_(ws.mask)
                aten._softmax.out(probs, -1, False, out=probs)
                torch.bmm(probs, v, out=ws.o)
                ocat = ws.ocat[l][:Mp]  # the heads side by side, for the rows computed
                if rows.shared:
                    torch.index_select(ws.o_rows, 0, places.o_index, out=ocat[:M].view(-1, hs))
                else:
                    ocat.view(B, T, H, hs).copy_(ws.o.view(B, H, T, hs).transpose(1, 2))
                h1 = P.linear_add(ocat, L.w_out, L.b_out, h, out=_rows(ws.h1[l], Mp))  # + W_out o
                c, mean2, rstd2 = torch.native_layer_norm(h1, (d,), L.ln2_w, L.ln2_b, L.ln2_eps)
                # ReLU in place: r > 0 exactly where its input was
                r = P.linear(c, L.w1, L.b1, out=_rows(ws.r[l], Mp), relu=True)
                h2 = P.linear_add(r, L.w2, L.b2, h1, out=_rows(ws.h[l + 1], Mp))  # residual + W2 r
                ws.saved[l] = (x_in, a, mean1, rstd1, h1, c, mean2, rstd2, r, ocat)
                h = h2
            head_w, head_b, g_head_w, g_head_b = self._head
            logits = P.linear(h, head_w, head_b, out=_rows(ws.logits, Mp))
            logp = torch._log_softmax(logits.index_select(0, scored_rows), 1, False)
            loss, total = aten.nll_loss_forward(logp, wanted, None, 1, IGNORE)  # the mean

            # ---- backward: the same steps in reverse
            one = torch.ones((), dtype=loss.dtype, device=loss.device)
            dlogp = aten.nll_loss_backward(one, logp, wanted, None, 1, IGNORE, total)
            dlogits = ws.dlogits[:Mp]
            dlogits.zero_().index_add_(
                0, scored_rows, aten._log_softmax_backward_data(dlogp, logp, 1, logp.dtype))
            P.grad_weight(dlogits, h, out=g_head_w)
            torch.sum(dlogits, 0, out=g_head_b)
            # dh: d loss / d the residual stream
            dh = P.grad_input(dlogits, head_w, out=_rows(ws.dh, Mp))
            if rows.shared and not P.onednn:
                ws.dn[M].zero_()
            for l in reversed(range(len(layers))):
                L = layers[l]
                x_in, a, mean1, rstd1, h1, c, mean2, rstd2, r, ocat = ws.saved[l]
                # feed-forward: h2 = h1 + W2 relu(W1 c + b1) + b2, with c = ln2(h1)
                P.grad_weight(dh, r, out=L.g_w2)
                torch.sum(dh, 0, out=L.g_b2)
                dr = P.grad_input(dh, L.w2, out=_rows(ws.dr, Mp))
                aten.threshold_backward.grad_input(dr, r, 0, grad_input=dr)
                P.grad_weight(dr, c, out=L.g_w1)
                torch.sum(dr, 0, out=L.g_b1)
                dn = P.grad_input(dr, L.w1, out=_rows(ws.dn, Mp))
                dx, dw, db = aten.native_layer_norm_backward(
                    dn, h1, (d,), mean2, rstd2, L.ln2_w, L.ln2_b, [True, True, True])
                L.g_ln2_w.copy_(dw)
                L.g_ln2_b.copy_(db)
                dh.add_(dx)  # now d loss / d h1
                # attention: h1 = h + W_out o + b_out
                P.grad_weight(dh, ocat, out=L.g_w_out)
                torch.sum(dh, 0, out=L.g_b_out)
                dn = P.grad_input(dh, L.w_out, out=_rows(ws.dn, Mp))
                if rows.shared:  # a place that only reads a row takes no gradient at its query
                    # row M of dn is zero: ws.dn's spare row, or with oneDNN a row past M
                    zero_row = (dn if P.onednn else ws.dn)[: M + 1]
                    torch.index_select(zero_row.view(-1, hs), 0, places.do_index, out=ws.do_rows)
                else:
                    ws.do.view(B, H, T, hs).copy_(dn.view(B, T, H, hs).transpose(1, 2))
                q, k, v, _, vt = ws.qkv_views[l]
                dq, dk, dv = ws.dq, ws.dk, ws.dv
                probs, dprobs = ws.probs[l], ws.dprobs
                torch.bmm(ws.probs_t[l], ws.do, out=dv)
                torch.bmm(ws.do, vt, out=dprobs)
                aten._softmax_backward_data.out(dprobs, probs, -1, probs.dtype, grad_input=dprobs)
                torch.baddbmm(dq, dprobs, k, beta=0, alpha=scale, out=dq)
                torch.baddbmm(dk, ws.dprobs_t, q, beta=0, alpha=scale, out=dk)
                dqkv = ws.dqkv[: len(a)]
                if l == 0 or rows.shared:  # every place's q, k, v add up in the row it read
                    n = n_first if l == 0 else M
                    places.add_up(ws.dheads, l == 0, dqkv[:n])
                    dqkv[n:].zero_()  # the extra rows' gradients (oneDNN's rounding up)
                else:
                    dqkv.view(B, T, 3, H, hs).copy_(ws.dheads.view(3, B, H, T, hs).permute(1, 3, 0, 2, 4))
                P.grad_weight(dqkv, a, out=L.g_w_in)
                torch.sum(dqkv, 0, out=L.g_b_in)
                dx, dw, db = aten.native_layer_norm_backward(
                    P.grad_input(dqkv, L.w_in, out=None), x_in, (d,), mean1, rstd1,
                    L.ln1_w, L.ln1_b, [True, True, True])
                L.g_ln1_w.copy_(dw)
                L.g_ln1_b.copy_(db)
                if l:
                    dh.add_(dx)  # now d loss / d the layer's input
                else:  # the embeddings: per distinct (token, position), plus the residual path
                    dx = dx[:n_first]
                    dx.index_add_(0, rows.first_of, dh[:M])
                    g_tok.zero_().index_add_(0, rows.first_tokens, dx)
                    g_pos.zero_().index_add_(0, rows.first_positions, dx)
        return loss


class EveryPositionPath(_FlatWeights):
    """`EveryPositionGrads` into a flat gradient buffer, for an optimizer over the flat weights."""

    def __init__(self, model: MiniTransformer):
        self.flat = flatten_parameters(model)
        self.grads = EveryPositionGrads(model)  # views of the flat weights, made after
        self.flat.grad = self.grads.flat_grad  # each call writes the step's gradients here

    def loss_and_gradients(self, x, y, every_targets) -> torch.Tensor:
        """This batch's loss (a 0-d tensor); its gradients are in ``self.flat.grad``."""
        return self.grads(x, every_targets)


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
