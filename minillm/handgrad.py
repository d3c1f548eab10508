"""The notebook's objective (loss on the last position) with its gradients written out by hand.

Autograd is general: every small operation records a node, and the backward pass walks them
one by one. On the notebook's tensors (28 windows of 5 tokens, 32 numbers each) that
bookkeeping costs more than the arithmetic: about 100 recorded operations for a loss that
needs some 60 small matrix products. Here the same forward pass runs without recording, and
the backward pass is the chain rule written out, step by step, in the order of the forward
pass reversed (the way llm.c and micrograd's hand-written layers do it). The answer is the
same gradient autograd gives (``tests/test_engine.py`` compares them on many shapes); only the
bookkeeping is gone.

    step = LastPositionGrads(model, X, Y)      # once per model and dataset
    loss, grads = step()                       # grads in model.parameters() order

Shapes: B distinct contexts (a window that repeats is run once), T positions, d = d_model, H heads of hs = d / H dims, V vocabulary ids.
"""

from __future__ import annotations

import torch

from minillm.model import MiniTransformer


def _layer_norm(x: torch.Tensor, weight, bias, eps: float):
    """LayerNorm forward that keeps what its backward needs (mean, 1/std)."""
    out, mean, rstd = torch.native_layer_norm(x, weight.shape, weight, bias, eps)
    return out, (x, mean, rstd)


def _layer_norm_backward(grad, saved, weight, bias, g_weight, g_bias) -> torch.Tensor:
    """d input of a LayerNorm; d weight and d bias are written into g_weight and g_bias."""
    x, mean, rstd = saved
    g_input, g_w, g_b = torch.ops.aten.native_layer_norm_backward(
        grad, x, weight.shape, mean, rstd, weight, bias, [True, True, True]
    )
    g_weight.copy_(g_w)
    g_bias.copy_(g_b)
    return g_input


class LastPositionGrads:
    """The loss and its gradients for one model on one full batch, as fast as plain torch allows.

    Built once per (model, dataset), after the weights are in their final tensors: it keeps
    views of them (the optimizer updates them in place, so the views stay current), what
    depends only on the data, and one flat buffer the gradients are written into, in
    ``model.parameters()`` order (what an optimizer over one flat tensor of all the weights
    wants; see ``minillm.train.flatten_parameters``). Calling it returns the loss (a 0-d
    tensor) and d loss / d each parameter (views of that buffer, overwritten by the next
    call): equal, up to float rounding, to ``F.cross_entropy(model.last_logits(X), Y)`` and
    what ``loss.backward()`` would leave in ``p.grad``. The causal mask does not matter here:
    the last position may look at every position.
    """

    def __init__(self, model: MiniTransformer, X: torch.Tensor, Y: torch.Tensor):
        dtype = model.lm_head.weight.dtype
        # The same context often appears in several windows ("<PAD> the cat" before "sat" and
        # before "ran"): the model computes the same numbers for each copy. So each distinct
        # context is run once, and its target is how often each next token follows it / B
        # (the loss is a mean over the B windows). Same loss, same gradients, fewer rows.
        X, inverse = torch.unique(X, dim=0, return_inverse=True)
        V, n_windows = model.config.vocab_size, len(Y)
        target = torch.zeros(len(X), V, dtype=dtype).index_put_(
            (inverse, Y), torch.ones(n_windows, dtype=dtype), accumulate=True
        ) / n_windows
        self.minus_target = -target  # (B, V) for the B distinct contexts
        self.share = target.sum(1, keepdim=True)  # (B, 1): each context's share of the windows
        B, T = X.shape
        d, H = model.config.d_model, model.config.n_heads
        self.B, self.T, self.d, self.H, self.hs = B, T, d, H, d // H
        self.scale = torch.tensor(self.hs**-0.5, dtype=dtype)  # 1/sqrt(hs), a tensor: no conversion each step
        self.X, self.X_flat = X, X.reshape(-1)
        # Detached views of the weights: the same numbers, updated in place by the optimizer,
        # but invisible to autograd, so no operation below records anything.
        p = {name: q.detach() for name, q in model.named_parameters()}
        self.p = p
        self.t = {name: p[name].t() for name in p if p[name].dim() == 2}  # transposed views
        self.eps1, self.eps2 = model.ln1.eps, model.ln2.eps
        self.flat_grad = torch.zeros(sum(q.numel() for q in p.values()), dtype=dtype)
        self.g, offset = {}, 0  # name -> its slice of flat_grad, shaped like the parameter
        for name, q in p.items():
            self.g[name] = self.flat_grad[offset : offset + q.numel()].view_as(q)
            offset += q.numel()
        self.grads = list(self.g.values())

    def __call__(self) -> tuple[torch.Tensor, list[torch.Tensor]]:
        B, T, d, H, hs = self.B, self.T, self.d, self.H, self.hs
        p, t, g = self.p, self.t, self.g
        tok, pos = p["token_embed.weight"], p["pos_embed.weight"]

        # ---- forward: the same sums as MiniTransformer.last_logits ----
        e = tok.index_select(0, self.X_flat).view(B, T, d) + pos[:T]  # (B, T, d)
        n1, ln1_saved = _layer_norm(e, p["ln1.weight"], p["ln1.bias"], self.eps1)  # (B, T, d)
        n1_flat = n1.view(B * T, d)
        # queries, keys and values of every position in one product (only the last query is used)
        qkv = torch.addmm(p["attn.in_proj_bias"], n1_flat, t["attn.in_proj_weight"]).view(B, T, 3, H, hs)
        q = qkv[:, -1, 0] * self.scale  # (B, H, hs): the last position's question, times 1/sqrt(hs)
        k, v = qkv[:, :, 1], qkv[:, :, 2]  # (B, T, H, hs) each
        att = torch.softmax((k * q[:, None]).sum(-1), dim=1)  # (B, T, H): how much it looks at each position
        o = (att[..., None] * v).sum(1).view(B, d)  # (B, d): each head's mix of values, side by side
        h1 = torch.addmm(p["attn.out_proj.bias"], o, t["attn.out_proj.weight"]).add_(e[:, -1])  # residual
        n2, ln2_saved = _layer_norm(h1, p["ln2.weight"], p["ln2.bias"], self.eps2)  # (B, d)
        f1 = torch.addmm(p["ff.0.bias"], n2, t["ff.0.weight"])  # (B, 4d)
        r = torch.relu(f1)
        h2 = torch.addmm(p["ff.2.bias"], r, t["ff.2.weight"]).add_(h1)  # (B, d), residual
        logits = torch.addmm(p["lm_head.bias"], h2, t["lm_head.weight"])  # (B, V)
        logp = torch.log_softmax(logits, dim=-1)
        loss = torch.dot(logp.view(-1), self.minus_target.view(-1))  # mean cross-entropy over the windows

        # ---- backward: the chain rule, last operation first; weight gradients go to g ----
        g_logits = torch.addcmul(self.minus_target, logp.exp_(), self.share)  # (B, V): share * softmax - target
        torch.mm(g_logits.t(), h2, out=g["lm_head.weight"])
        torch.sum(g_logits, 0, out=g["lm_head.bias"])
        g_h2 = g_logits @ p["lm_head.weight"]  # (B, d)
        torch.mm(g_h2.t(), r, out=g["ff.2.weight"])
        torch.sum(g_h2, 0, out=g["ff.2.bias"])
        g_f1 = torch.ops.aten.threshold_backward(g_h2 @ p["ff.2.weight"], f1, 0)  # ReLU passes where it was on
        torch.mm(g_f1.t(), n2, out=g["ff.0.weight"])
        torch.sum(g_f1, 0, out=g["ff.0.bias"])
        g_h1 = _layer_norm_backward(
            g_f1 @ p["ff.0.weight"], ln2_saved, p["ln2.weight"], p["ln2.bias"], g["ln2.weight"], g["ln2.bias"]
        )
        g_h1 += g_h2  # the residual path around the feed-forward
        torch.mm(g_h1.t(), o, out=g["attn.out_proj.weight"])
        torch.sum(g_h1, 0, out=g["attn.out_proj.bias"])
        g_o = (g_h1 @ p["attn.out_proj.weight"]).view(B, 1, H, hs)
        g_qkv = torch.zeros(B, T, 3, H, hs, dtype=q.dtype)  # no other position's query was used
        torch.mul(att[..., None], g_o, out=g_qkv[:, :, 2])  # d values
        g_s = torch._softmax_backward_data((v * g_o).sum(-1), att, 1, att.dtype)  # (B, T, H)
        torch.mul(g_s[..., None], q[:, None], out=g_qkv[:, :, 1])  # d keys
        torch.sum(g_s[..., None] * k, 1, out=g_qkv[:, -1, 0]).mul_(self.scale)  # d last query
        g_qkv = g_qkv.view(B * T, 3 * d)
        torch.mm(g_qkv.t(), n1_flat, out=g["attn.in_proj_weight"])  # (3d, d): q, k, v rows
        torch.sum(g_qkv, 0, out=g["attn.in_proj_bias"])
        g_n1 = (g_qkv @ p["attn.in_proj_weight"]).view(B, T, d)
        g_e = _layer_norm_backward(g_n1, ln1_saved, p["ln1.weight"], p["ln1.bias"], g["ln1.weight"], g["ln1.bias"])
        g_e[:, -1] += g_h1  # the residual path around attention (last position only)
        g["token_embed.weight"].zero_().index_add_(0, self.X_flat, g_e.view(B * T, d))
        torch.sum(g_e, 0, out=g["pos_embed.weight"][:T])  # windows shorter than the block leave
        return loss, self.grads  # the later positions' rows at zero
