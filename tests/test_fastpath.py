"""The GPT objective's fast path against the plain autograd loop (minillm/fastpath.py).

The Trainer takes `EveryPositionPath` for every-position runs with mini-batches; these tests
pin that it changes no number: its gradients equal autograd's (float64, 1e-12), and 30 steps
of the Trainer with it give the losses and the weights of the plain loop (float32, 1e-5, with
the products through oneDNN where torch has it: `minillm.products`), for one layer and three,
with and without the causal mask. And the seam gives None where the path does not apply.
"""

from __future__ import annotations

import copy

import pytest
import torch

from minillm.data import IGNORE, build_dataset
from minillm.fastpath import (EveryPositionGrads, EveryPositionPath, FastPath, SharedRows,
                              adamw_step)
from minillm.model import ModelConfig, build_model
from minillm.stories import StorySettings, generate_stories
from minillm.tokenizers import CharTokenizer
from minillm.train import Trainer, torch_threads


@pytest.fixture(scope="module")
def stories():
    """Character windows of generated stories: left-padded near each story's start."""
    lines, _ = generate_stories(StorySettings(seed=0), 60).by_story()
    return build_dataset(lines, CharTokenizer.fit(lines), block_size=12, eos=True)


def _config(vocab_size, block_size, n_layers=1, causal=True, d_model=16, n_heads=2):
    return ModelConfig(vocab_size=vocab_size, block_size=block_size, d_model=d_model,
                       n_heads=n_heads, causal=causal, loss_on="every", n_layers=n_layers)


def _padded_batch(B, T, V, pad, generator):
    """Windows as the engine makes them, some left-padded, some starting alike."""
    x = torch.randint(0, pad, (B, T), generator=generator)
    for b in range(B):
        x[b, : int(torch.randint(0, T + 1, (), generator=generator))] = pad
    if B > 3:
        x[1, :2] = x[2, :2] = x[3, :2] = 0  # a run of a real token, shared by three windows
        x[3, :5] = 0
    targets = torch.cat([x[:, 1:], torch.randint(0, pad, (B, 1), generator=generator)], 1)
    return x, targets.masked_fill(targets == pad, IGNORE)


@pytest.mark.parametrize(
    "B, T, d, H, n_layers",
    [
        (6, 7, 12, 3, 1),
        (6, 7, 12, 3, 3),
        (9, 16, 16, 4, 2),
        (1, 5, 8, 2, 2),  # one window
        (4, 1, 8, 2, 1),  # one position
        (5, 6, 4, 4, 2),  # heads of one dimension
    ],
)
@pytest.mark.parametrize("causal", [True, False])
def test_hand_gradients_equal_autograd(float64, B, T, d, H, n_layers, causal):
    V = 11
    generator = torch.Generator().manual_seed(B * T + d)
    model = build_model(_config(V, T, n_layers, causal, d, H), seed=1)
    x, targets = _padded_batch(B, T, V, V - 1, generator)
    loss = model.loss(x, None, targets)
    loss.backward()
    hand = EveryPositionGrads(copy.deepcopy(model))
    assert hand(x, targets).item() == pytest.approx(loss.item(), abs=1e-12)
    for (name, p), g in zip(model.named_parameters(), hand.gradients):
        assert torch.allclose(g, p.grad, atol=1e-12, rtol=0), name


def test_hand_gradients_follow_the_weights_and_the_mask(float64):
    model = build_model(_config(9, 6, n_layers=2), seed=4)
    hand = EveryPositionGrads(model)
    x, targets = _padded_batch(5, 6, 9, 8, torch.Generator().manual_seed(0))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.3).add_(0.01)  # in place, as the optimizer does
    model.config.causal = False  # as honest_loss toggles it: read at each call
    loss = hand(x, targets)
    expected = model.loss(x, None, targets)
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), abs=1e-12)
    for p, g in zip(model.parameters(), hand.gradients):
        assert torch.allclose(g, p.grad, atol=1e-12)


def test_shared_rows_are_computed_once_and_read_where_they_belong():
    pad = 9
    x = torch.tensor([
        [pad, pad, pad, 1, 2],
        [pad, pad, 3, 4, 5],  # agrees with the first up to position 1
        [pad, pad, pad, pad, 6],  # up to 2 with the first (then its own padding)
        [1, 2, 3, 4, 5],  # nothing in common
    ])
    rows = SharedRows(x, causal=True)
    assert rows.shared and rows.M == 5 + 3 + 2 + 5  # window 2 computes its positions 3 and 4
    reads = rows.full_to_row.view(4, 5)
    placed = rows.row_from_full
    assert placed[reads[1, :2]].tolist() == [0, 1] and placed[reads[2, :3]].tolist() == [0, 1, 2]
    assert placed[reads[1, 2:]].tolist() == [7, 8, 9]  # its own from position 2 on
    assert placed[reads[3]].tolist() == list(range(15, 20))
    # what every place reads holds the same tokens up to it: the same context
    for b in range(4):
        for t in range(5):
            r = int(placed[reads[b, t]])
            assert x.reshape(-1)[r - t : r + 1].tolist() == x[b, : t + 1].tolist()
    # the first layer runs once per distinct (token, position)
    pairs = set(zip(x.reshape(-1)[placed].tolist(), (placed % 5).tolist()))
    assert len(rows.first_tokens) == len(pairs)
    assert SharedRows(x, causal=False).M == 20 and SharedRows(x, causal=False).full_to_row is None


def _trainers(dataset, config, epochs=30, **kwargs):
    """The plain loop and the fast path from the same weights and the same batches."""
    out = []
    for hand in (False, True):
        trainer = Trainer(build_model(config, seed=3), dataset, lr=3e-3, epochs=epochs,
                          batch_size=8, seed=1, hand_gradients=hand, **kwargs)
        out.append(trainer)
    plain, fast = out
    assert plain.fast is None and isinstance(fast.fast, EveryPositionPath)
    return plain, fast


def _same_weights(a, b, d, atol=1e-5):
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        if name.endswith("attn.in_proj_bias"):
            # The key bias adds the same number to every score of a query, which softmax
            # ignores: its true gradient is 0, and AdamW turns float noise of ~1e-9 into
            # full-size steps, different in each implementation. It changes no output (the
            # logits are compared below); the query and value biases are held equal.
            p, q = torch.cat((p[:d], p[2 * d :])), torch.cat((q[:d], q[2 * d :]))
        assert torch.allclose(p, q, atol=atol, rtol=0), name


@pytest.mark.parametrize("n_layers", [1, 3])
@pytest.mark.parametrize("causal", [True, False])
def test_the_trainer_takes_the_plain_loops_steps(stories, n_layers, causal):
    config = _config(stories.vocab_size, stories.block_size, n_layers, causal)
    plain, fast = _trainers(stories, config)
    batch = stories.X[:8]
    assert SharedRows(batch, causal).shared == causal  # the first windows are padded
    plain.run()
    fast.run(10)
    fast.run()  # in chunks, as a page runs it
    assert fast.history == pytest.approx(plain.history, abs=1e-5)
    assert fast.history[-1] < fast.history[0]
    _same_weights(fast.model, plain.model, config.d_model)
    with torch.no_grad():
        assert torch.allclose(fast.model(stories.X)[0], plain.model(stories.X)[0], atol=1e-4)


def test_a_learning_rate_schedule_is_the_same_on_both_paths_and_off_by_default(stories):
    config = _config(stories.vocab_size, stories.block_size, n_layers=2)
    schedule = lambda step: min(1.0, (step + 1) / 10) * 0.5 ** (step / 20)  # noqa: E731
    plain, fast = _trainers(stories, config, lr_schedule=schedule)
    plain.run()
    fast.run()
    assert fast.history == pytest.approx(plain.history, abs=1e-5)
    _same_weights(fast.model, plain.model, config.d_model)
    # the same as torch's own LambdaLR over the same batches
    model = build_model(config, seed=3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, fused=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    every = stories.every_position_targets()
    draws = torch.Generator().manual_seed(1)
    expected = []
    with torch_threads(1):
        for _ in range(30):
            rows = torch.randint(len(stories.Y), (8,), generator=draws)
            loss = model.loss(stories.X[rows], None, every[rows])
            expected.append(loss.item())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
    assert plain.history == pytest.approx(expected, abs=1e-5)
    constant = Trainer(build_model(config, seed=3), stories, lr=3e-3, epochs=5, batch_size=8)
    constant.run()
    assert constant.lr_schedule is None
    assert constant.optimizer.param_groups[0]["lr"] == 3e-3


def test_adamw_settings_are_the_same_on_both_paths_and_torchs_defaults_otherwise(stories):
    """betas and weight decay reach AdamW on either path alike (it works number by number,
    so one flat tensor or one entry per weight take the same steps)."""
    config = _config(stories.vocab_size, stories.block_size, n_layers=2)
    plain, fast = _trainers(stories, config, betas=(0.9, 0.95), weight_decay=0.1)
    plain.run()
    fast.run()
    assert fast.history == pytest.approx(plain.history, abs=1e-5)
    _same_weights(fast.model, plain.model, config.d_model)
    for trainer in (plain, fast):
        group = trainer.optimizer.param_groups[0]
        assert group["betas"] == (0.9, 0.95) and group["weight_decay"] == 0.1
    default = Trainer(build_model(config, seed=3), stories, epochs=1, batch_size=8)
    group = default.optimizer.param_groups[0]
    assert group["betas"] == (0.9, 0.999) and group["weight_decay"] == 0.01  # torch's


def test_the_optimizer_state_moves_between_the_paths(stories):
    """A run saved from the fast path continues on the plain loop (and back) step for step."""
    config = _config(stories.vocab_size, stories.block_size, n_layers=2)
    plain, fast = _trainers(stories, config, epochs=20)
    fast.run(10)
    plain.run(10)
    state = fast.optimizer.state_dict()
    resumed = Trainer(copy.deepcopy(plain.model), stories, lr=3e-3, epochs=20, batch_size=8,
                      seed=1, hand_gradients=False)
    resumed.model.load_state_dict(fast.model.state_dict())
    resumed.load_optimizer_state(state)
    resumed._batches.set_state(fast._batches.get_state())
    resumed.history = list(fast.history)
    fast.run()
    resumed.run()
    assert resumed.history == pytest.approx(fast.history, abs=1e-5)
    back = Trainer(build_model(config, seed=3), stories, lr=3e-3, epochs=20, batch_size=8)
    back.load_optimizer_state(resumed.optimizer.state_dict())  # per weight -> flat
    assert isinstance(back.fast, EveryPositionPath)


def test_the_seam_gives_none_where_the_path_does_not_apply(stories):
    V, T = stories.vocab_size, stories.block_size
    X, Y = stories.X, stories.Y

    def path(config, batch_size=8, model=None):
        return FastPath.for_run(model or build_model(config), X, Y, batch_size)

    assert isinstance(path(_config(V, T, 2)), EveryPositionPath)
    assert isinstance(path(_config(V, T, 1, causal=False)), EveryPositionPath)
    assert path(_config(V, T, 2), batch_size=None) is None  # full batch: the plain loop
    last = ModelConfig(vocab_size=V, block_size=T, d_model=16, n_heads=2)
    assert path(last) is None  # the last position with mini-batches
    assert isinstance(path(last, batch_size=None), FastPath)  # the notebook's own path
    assert path(ModelConfig(vocab_size=V, block_size=T, n_layers=2), batch_size=None) is None
    model = build_model(_config(V, T, 2))
    model.layers[0].attn.dropout = 0.1  # a module this path does not write out
    assert path(None, model=model) is None
    model = build_model(_config(V, T, 1))
    model.ff[1] = torch.nn.GELU()
    assert path(None, model=model) is None
    assert Trainer(build_model(_config(V, T, 2)), stories, batch_size=8,
                   hand_gradients=False).fast is None  # "the plain loop only"


def test_an_all_ignored_batch_stops_the_run_as_the_plain_loop_does(stories):
    dataset = copy.copy(stories)
    config = _config(stories.vocab_size, stories.block_size)
    first = (stories.X[:, -2] == stories.pad_id).nonzero()[:, 0]  # windows of one real token
    dataset.X, dataset.Y = stories.X[first], stories.Y[first]
    dataset.X[:, -1] = stories.pad_id  # nothing left to predict but Y
    dataset.Y = torch.full_like(dataset.Y, stories.pad_id)
    for hand in (False, True):
        trainer = Trainer(build_model(config), dataset, epochs=3, batch_size=2, hand_gradients=hand)
        trainer.run()
        assert trainer.history == [] and "The loss became nan" in trainer.stopped_reason


def _flat_optimizer(seed: int, **settings):
    """AdamW over one flat tensor with a fixed gradient source, as the fast paths run it."""
    weights = torch.nn.Parameter(torch.randn(50, generator=torch.Generator().manual_seed(seed)))
    return weights, torch.optim.AdamW([weights], lr=1e-2, fused=True, **settings)


def _steps(step, weights, optimizer, n: int = 6) -> tuple[list[int], torch.Tensor]:
    """`n` steps with changing gradients and learning rates; the calls optimizer.step() saw."""
    seen: list[int] = []
    optimizer.register_step_pre_hook(lambda *_: seen.append(1))
    for i in range(n):
        weights.grad = torch.sin(weights.detach() * (i + 1))
        optimizer.param_groups[0]["lr"] = 1e-2 / (i + 1)
        step(optimizer)
    return seen, weights.detach().clone()


def test_adamw_step_is_the_optimizers_step_bit_for_bit_through_its_kernel():
    weights, optimizer = _flat_optimizer(0, betas=(0.9, 0.95), weight_decay=0.1)
    plain_w, plain_opt = _flat_optimizer(0, betas=(0.9, 0.95), weight_decay=0.1)
    seen, after = _steps(adamw_step, weights, optimizer)
    plain_seen, plain_after = _steps(lambda o: o.step(), plain_w, plain_opt)
    assert torch.equal(after, plain_after)
    mine, theirs = optimizer.state_dict(), plain_opt.state_dict()
    for key in ("step", "exp_avg", "exp_avg_sq"):
        assert torch.equal(mine["state"][0][key], theirs["state"][0][key])
    # Only the first step (which creates the averages) went through optimizer.step().
    assert (len(seen), len(plain_seen)) == (1, 6)


@pytest.mark.parametrize("settings", [{"amsgrad": True}, {"maximize": True}])
def test_adamw_step_leaves_what_it_does_not_write_out_to_the_optimizer(settings):
    weights, optimizer = _flat_optimizer(1, **settings)
    plain_w, plain_opt = _flat_optimizer(1, **settings)
    seen, after = _steps(adamw_step, weights, optimizer)
    _, plain_after = _steps(lambda o: o.step(), plain_w, plain_opt)
    assert len(seen) == 6 and torch.equal(after, plain_after)


def test_the_fast_path_steps_through_the_kernel_and_keeps_its_best_in_one_copy(stories):
    config = _config(stories.vocab_size, stories.block_size)
    model = build_model(config, seed=3)
    trainer = Trainer(model, stories, lr=3e-2, epochs=25, batch_size=8, seed=1)
    assert trainer.fast is not None
    stepped: list[int] = []  # the Trainer's calls of optimizer.step() itself
    trainer.optimizer.register_step_pre_hook(lambda *_: stepped.append(1))
    lowest = (float("inf"), None)
    while not trainer.done:
        before = [p.detach().clone() for p in trainer._params]
        loss = trainer.run(1)[0]
        if loss < lowest[0]:
            lowest = (loss, before)  # the loss is the weights' before the step
    assert trainer._best_loss == lowest[0] and len(stepped) == 1  # then AdamW's kernel
    for best, weights in zip(trainer._best, lowest[1]):
        assert best.data_ptr() >= trainer._best_flat.data_ptr()  # a view of the flat copy
        assert torch.equal(best, weights)
