"""The hand-written gradients and the flat optimizer against autograd and torch's own AdamW.

The trainer's speed comes from two shortcuts (minillm/handgrad.py and one flat tensor for the
optimizer); these tests pin that they change no number, micrograd style: the same thing
computed the standard way and compared.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from minillm.corpus import CATS_AND_DOGS
from minillm.data import build_dataset
from minillm.experiment import Experiment, TrainSettings
from minillm.handgrad import LastPositionGrads
from minillm.model import ModelConfig, build_model
from minillm.tokenizers import WordTokenizer
from minillm.fastpath import flatten_parameters
from minillm.train import Trainer, torch_threads


@pytest.mark.parametrize(
    "B, T, d, H, V, block",
    [
        (28, 5, 32, 2, 15, 5),  # the notebook's shapes
        (40, 3, 8, 2, 2, 3),  # two tokens only: almost every window repeats
        (3, 1, 8, 1, 4, 1),  # one position, one head
        (7, 3, 12, 3, 9, 6),  # windows shorter than the block: later positions unused
        (10, 8, 16, 4, 30, 8),
        (1, 2, 4, 4, 2, 2),  # one window, heads of one dimension
    ],
)
@pytest.mark.parametrize("causal", [False, True])
def test_hand_gradients_equal_autograd(float64, B, T, d, H, V, block, causal):
    model = build_model(ModelConfig(vocab_size=V, block_size=block, d_model=d, n_heads=H, causal=causal), seed=1)
    generator = torch.Generator().manual_seed(B * T + V)
    X = torch.randint(0, V, (B, T), generator=generator)
    X[B // 2] = X[0]  # at least one repeated context
    Y = torch.randint(0, V, (B,), generator=generator)
    loss = F.cross_entropy(model.last_logits(X), Y)
    loss.backward()
    hand_loss, grads = LastPositionGrads(model, X, Y)()
    assert hand_loss.item() == pytest.approx(loss.item(), abs=1e-12)
    for (name, p), g in zip(model.named_parameters(), grads):
        assert g.shape == p.shape
        assert torch.allclose(g, p.grad, atol=1e-12, rtol=0), name


def test_hand_gradients_follow_the_weights_as_they_change(float64):
    model = build_model(ModelConfig(vocab_size=6, block_size=3, d_model=8, n_heads=2), seed=3)
    X, Y = torch.randint(0, 6, (5, 3)), torch.randint(0, 6, (5,))
    hand = LastPositionGrads(model, X, Y)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5).add_(0.01)  # in place, as the optimizer does
    _, grads = hand()
    F.cross_entropy(model.last_logits(X), Y).backward()
    assert all(torch.allclose(g, p.grad, atol=1e-12) for p, g in zip(model.parameters(), grads))


def test_flat_parameters_are_the_models_weights():
    model = build_model(ModelConfig(vocab_size=7), seed=0)
    before = copy.deepcopy(model.state_dict())
    flat = flatten_parameters(model)
    assert flat.numel() == model.num_parameters()
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])  # nothing moved
    with torch.no_grad():
        flat.zero_()
    assert all(torch.all(p == 0) for p in model.parameters())  # one tensor, many views
    clone = copy.deepcopy(model)  # what the Attention page does for a snapshot
    with torch.no_grad():
        flat.fill_(1.0)
    assert all(torch.all(p == 0) for p in clone.parameters())


def _dataset():
    return build_dataset(CATS_AND_DOGS, WordTokenizer.fit(CATS_AND_DOGS), block_size=5)


def test_trainer_takes_the_steps_torch_adamw_takes_per_parameter():
    """Flat AdamW with hand gradients = the notebook's AdamW over each weight with autograd."""
    dataset = _dataset()
    config = ModelConfig(vocab_size=dataset.vocab_size)
    reference = build_model(config, seed=42)
    optimizer = torch.optim.AdamW(reference.parameters(), lr=1e-2, fused=True)  # one weight at a time
    expected = []
    with torch_threads(1):  # as the Trainer: the same order of float sums
        for _ in range(40):
            loss = reference.loss(dataset.X, dataset.Y)
            expected.append(loss.item())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    for hand in (True, False):
        trainer = Trainer(build_model(config, seed=42), dataset, lr=1e-2, epochs=40, hand_gradients=hand)
        trainer.run()
        assert trainer.history == pytest.approx(expected, abs=1e-5)
        d = config.d_model
        for (name, p), q in zip(trainer.model.named_parameters(), reference.named_parameters()):
            if name == "attn.in_proj_bias":
                # The key bias adds the same number to every score of a query, which softmax
                # ignores: its true gradient is 0, and AdamW turns float noise of ~1e-9 into
                # full-size steps. It wanders differently in each implementation, harmlessly.
                p, q = torch.cat((p[:d], p[2 * d :])), torch.cat((q[1][:d], q[1][2 * d :]))
            else:
                q = q[1]
            assert torch.allclose(p, q, atol=1e-4), name
        # The same predictions. Compared as probabilities: logits reach about 20 here, and the
        # float rounding left after 40 AdamW steps (weights within 1e-4, above) moves a logit
        # by up to 1.5e-3 on some CPUs (an AMD EPYC with AVX-512), about 1e-4 of that scale.
        with torch.no_grad():
            assert torch.allclose(
                trainer.model.last_logits(dataset.X).softmax(-1),
                reference.last_logits(dataset.X).softmax(-1), atol=1e-3,
            )


def test_every_position_training_still_uses_autograd_and_learns():
    exp = Experiment(TrainSettings(loss_on="every", causal=True, epochs=60))
    assert exp.trainer.fast is None
    exp.trainer.run()
    assert exp.trainer.history[-1] < exp.trainer.history[0] - 1.0
