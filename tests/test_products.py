"""The GPT fast path's products through oneDNN (minillm/products.py).

Each product equals ``torch.mm``'s up to float32 rounding; the library is chosen by what
torch has and the tensors' kind, never by timing; and the fast path through oneDNN, which
computes some rows more than it needs, gives autograd's gradients, with nothing of those
extra rows reaching any weight's gradient.
"""

from __future__ import annotations

import copy

import pytest
import torch

from minillm.fastpath import EveryPositionGrads, SharedRows
from minillm.model import build_model
from minillm.products import ENV, ROWS, Products, onednn_usable
from test_fastpath import _config, _padded_batch

needs_onednn = pytest.mark.skipif(
    not onednn_usable(torch.zeros(1, dtype=torch.float32), environ={}),
    reason="this torch build has no oneDNN (the products then go through torch.mm)")


@pytest.fixture(autouse=True)
def no_setting(monkeypatch):
    """Each test says which library it wants: a MINILLM_PRODUCTS in the shell does not count."""
    monkeypatch.delenv(ENV, raising=False)


def _pair():
    return Products(torch.zeros(1), environ={}), Products(torch.zeros(1), environ={ENV: "torch"})


@needs_onednn
@pytest.mark.parametrize("rows, fan_in, fan_out",
                         [(200, 16, 48), (129, 64, 256), (70, 256, 64), (5, 3, 7)])
def test_each_product_is_torch_mms_up_to_rounding(rows, fan_in, fan_out):
    dnn, mkl = _pair()
    assert dnn.onednn and not mkl.onednn
    g = torch.Generator().manual_seed(rows)
    x, dy = torch.randn(rows, fan_in, generator=g), torch.randn(rows, fan_out, generator=g)
    w, b = torch.randn(fan_out, fan_in, generator=g), torch.randn(fan_out, generator=g)
    residual = torch.randn(rows, fan_out, generator=g)

    def both(method, *args, out_shape):
        return [getattr(p, method)(*args, out=torch.full(out_shape, float("nan")))
                for p in (dnn, mkl)]

    y = x @ w.t() + b
    close = dict(rtol=1e-5, atol=1e-4)
    for got in both("linear", x, w, b, out_shape=(rows, fan_out)):
        torch.testing.assert_close(got, y, **close)
    relu = [dnn.linear(x, w, b, out=torch.empty(rows, fan_out), relu=True),
            mkl.linear(x, w, b, out=torch.empty(rows, fan_out), relu=True)]
    for got in relu:
        torch.testing.assert_close(got, y.clamp_min(0), **close)
    for got in both("linear_add", x, w, b, residual, out_shape=(rows, fan_out)):
        torch.testing.assert_close(got, residual + y, **close)
    for got in both("grad_input", dy, w, out_shape=(rows, fan_in)):
        torch.testing.assert_close(got, dy @ w, **close)
    # the weight's gradient in both of oneDNN's orders (the narrower side first)
    for got in both("grad_weight", dy, x, out_shape=(fan_out, fan_in)):
        torch.testing.assert_close(got, dy.t() @ x, **close)


def test_torch_mm_writes_into_the_steps_own_buffers():
    _, mkl = _pair()
    x, w, b = torch.randn(6, 4), torch.randn(3, 4), torch.randn(3)
    out = torch.empty(6, 3)
    assert mkl.linear(x, w, b, out=out) is out
    assert torch.equal(out, torch.addmm(b, x, w.t()))
    grad = torch.empty(3, 4)
    assert mkl.grad_weight(torch.randn(6, 3), x, out=grad) is grad
    assert mkl.rows(37, 100, spare=True) == 37  # torch.mm builds nothing per shape


def test_the_library_follows_the_tensors_and_the_setting_never_a_timing():
    available = torch.backends.mkldnn.is_available()
    assert onednn_usable(torch.zeros(1), environ={}) == available
    assert onednn_usable(torch.zeros(1), environ={ENV: "oneDNN"}) == available
    assert not onednn_usable(torch.zeros(1), environ={ENV: " Torch "})
    assert not onednn_usable(torch.zeros(1, dtype=torch.float64), environ={})
    assert not onednn_usable(torch.zeros(1, device="meta"), environ={})  # not the CPU


@needs_onednn
def test_row_counts_round_up_to_a_few_shapes():
    dnn, _ = _pair()
    assert [dnn.rows(m, 2048) for m in (1, 64, 65, 1650, 2047)] == [64, 64, 128, 1664, 2048]
    assert dnn.rows(64, 2048, spare=True) == 128  # a row past m
    assert dnn.rows(2040, 2048, spare=True) == 2048  # never past the buffers
    # 549 different row counts meet 9 kernels: 1536, 1600, ..., 2048
    assert sorted({dnn.rows(m, 2048) for m in range(1500, 2049)}) == list(range(1536, 2049, ROWS))


def _gradients(model, x, targets):
    hand = EveryPositionGrads(model)
    loss = hand(x, targets)
    return hand, loss, [g.clone() for g in hand.gradients]


@needs_onednn
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("n_layers", [1, 2])
def test_the_fast_path_through_onednn_gives_autograds_gradients(causal, n_layers):
    V, B, T = 11, 9, 16  # 144 places: more than one block of ROWS
    model = build_model(_config(V, T, n_layers, causal, d_model=16, n_heads=4), seed=2)
    x, targets = _padded_batch(B, T, V, V - 1, torch.Generator().manual_seed(5))
    rows = SharedRows(x, causal)
    hand, loss, grads = _gradients(model, x, targets)
    P = hand.products
    assert P.onednn
    n_first = len(rows.first_tokens)
    assert P.rows(rows.M, B * T, spare=rows.shared) > rows.M or not causal
    assert P.rows(n_first, B * T) > n_first  # rows past the work in the first layer too

    exact = copy.deepcopy(model).double()  # the truth, in float64 through autograd
    expected = exact.loss(x, None, targets)
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    for (name, p), g in zip(exact.named_parameters(), grads):
        torch.testing.assert_close(g.double(), p.grad, rtol=1e-3, atol=2e-5, msg=name)

    # The extra rows: whatever the buffers held from before, the gradients are the same bit
    # for bit (a row past the work that leaked into a sum would change them).
    ws = hand._ws
    for buffers in (ws.h, ws.h1, ws.r, ws.ocat, [ws.qkv, ws.dqkv, ws.dh, ws.dn, ws.dr,
                                                 ws.logits, ws.dlogits]):
        for t in buffers:
            if t is not None:  # oneDNN writes the products' results to tensors of its own
                t.fill_(1e3)
    assert torch.equal(hand(x, targets), loss)
    for before, after in zip(grads, hand.gradients):
        assert torch.equal(before, after)


@needs_onednn
def test_both_libraries_train_to_the_same_numbers(monkeypatch):
    V, B, T = 11, 12, 16
    x, targets = _padded_batch(B, T, V, V - 1, torch.Generator().manual_seed(1))
    model = build_model(_config(V, T, 2, True, d_model=16, n_heads=4), seed=3)
    monkeypatch.setenv(ENV, "torch")
    _, loss_mkl, grads_mkl = _gradients(copy.deepcopy(model), x, targets)
    monkeypatch.delenv(ENV)
    hand, loss_dnn, grads_dnn = _gradients(copy.deepcopy(model), x, targets)
    assert hand.products.onednn
    assert loss_dnn.item() == pytest.approx(loss_mkl.item(), rel=1e-6)
    for a, b in zip(grads_dnn, grads_mkl):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-6)
