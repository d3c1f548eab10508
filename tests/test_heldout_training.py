"""Held-out text, bits per character, mini-batches and deeper models in the engine."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from minillm.corpus import CATS_AND_DOGS, COUNTRY_STYLE
from minillm.experiment import Experiment, TrainSettings
from minillm.heldout import characters_in
from minillm.model import MiniTransformer, ModelConfig, build_model
from minillm.stories import StorySettings, generate_stories


def _stories(n=150, seed=0):
    return generate_stories(StorySettings(seed=seed), n).by_story()


def test_the_notebooks_six_sentences_cannot_be_split_and_train_as_before():
    exp = Experiment(TrainSettings())
    assert exp.valid is None and "at least 10" in exp.valid_reason
    exp.trainer.run()
    assert round(exp.trainer.history[-1], 4) == 0.3845
    summary = exp.summary()
    assert "valid_loss" not in summary and summary["valid_reason"] == exp.valid_reason


def test_the_split_is_the_same_whatever_the_models_seed_and_disjoint():
    a = Experiment(TrainSettings(lines=COUNTRY_STYLE, seed=1, epochs=10))
    b = Experiment(TrainSettings(lines=COUNTRY_STYLE, seed=2, epochs=10))
    assert a.split == b.split and len(a.split.valid) == 2
    assert not set(a.split.train_positions) & set(a.split.valid_positions)
    assert sorted(a.split.train_positions + a.split.valid_positions) == list(range(20))


def test_bits_per_character_by_hand():
    exp = Experiment(TrainSettings(epochs=10))  # 28 windows over six lines
    chars = characters_in(CATS_AND_DOGS)  # 22 + 22 + 24 + 23 + 24 + 29 characters, + 6 newlines
    assert chars == 150
    assert exp.bits_per_character(1.0) == pytest.approx(28 / 150 / math.log(2), abs=1e-12)


def test_stories_by_story_keep_the_characters_and_the_nats():
    stories = generate_stories(StorySettings(seed=3), 400)
    lines, nats = stories.by_story()
    assert len(lines) == len(stories.story_starts)
    assert characters_in(lines) == characters_in(stories.lines)
    assert math.fsum(nats) == pytest.approx(stories.total_nats, abs=1e-9)


def test_the_heldout_floor_of_generated_stories():
    lines, nats = _stories()
    exp = Experiment(TrainSettings(lines=lines, epochs=10), line_nats=nats)
    valid = exp.split.valid_positions
    expected = math.fsum(nats[i] for i in valid) / characters_in(exp.split.valid) / math.log(2)
    assert exp.heldout_floor_bits == pytest.approx(expected, abs=1e-12)
    assert exp.summary()["heldout_floor_bits"] == exp.heldout_floor_bits


def test_overfitting_shows_on_held_out_text():
    """A small corpus and many steps: training loss falls to its lowest while the held-out
    loss turns up from its best."""
    lines, nats = _stories(150)
    settings = TrainSettings(lines=lines, corpus_name="Stories (generated)", block_size=8,
                             d_model=32, n_heads=2, lr=1e-2, epochs=150, loss_on="every",
                             causal=True)
    exp = Experiment(settings, line_nats=nats)
    exp.trainer.run()
    s = exp.summary()
    assert s["valid_loss"] > s["valid_best"] + 0.1
    assert s["loss"] <= min(exp.trainer.history) + 0.02
    assert 0 < s["valid_best_epoch"] < settings.epochs
    assert "overfitting" in s["verdicts"]
    assert s["valid_bits"] > s["heldout_floor_bits"]


def test_mini_batches_are_seeded_and_differ_from_full_batch():
    settings = TrainSettings(lines=COUNTRY_STYLE, tokenizer="character", block_size=8,
                             loss_on="every", causal=True, epochs=20, batch_size=16)
    a, b = Experiment(settings), Experiment(settings)
    a.trainer.run()
    b.trainer.run()
    assert a.trainer.history == b.trainer.history
    full = Experiment(replace(settings, batch_size=0))
    full.trainer.run()
    assert full.trainer.history != a.trainer.history
    other_seed = Experiment(replace(settings, seed=1))
    other_seed.trainer.run()
    assert other_seed.trainer.history != a.trainer.history


@pytest.mark.parametrize("n_layers", [2, 4])
def test_deeper_models_train_and_show_each_layers_attention(n_layers):
    settings = TrainSettings(lines=COUNTRY_STYLE, tokenizer="character", block_size=8,
                             loss_on="every", causal=True, epochs=30, n_layers=n_layers,
                             lr=3e-3)
    exp = Experiment(settings)
    assert exp.trainer.fast is None  # the hand-written gradients are for one layer only
    exp.trainer.run()
    assert exp.trainer.history[-1] < exp.trainer.history[0]
    x = exp.dataset.X[:3]
    maps = exp.model.attention_maps(x)
    assert len(maps) == n_layers and maps[0].shape == (3, 2, 8, 8)
    logits, first = exp.model(x, need_weights=True)
    assert torch.allclose(first, maps[0])
    assert torch.allclose(exp.model.last_logits(x), logits[:, -1], atol=1e-5)


def test_one_layer_keeps_the_notebooks_modules_and_weights():
    config = ModelConfig(vocab_size=15)
    assert len(build_model(config).layers) == 0
    torch.manual_seed(42)
    reference = MiniTransformer(config).state_dict()
    assert list(build_model(config, 42).state_dict()) == list(reference)


def test_the_last_position_objective_on_a_deeper_model_uses_autograd():
    exp = Experiment(TrainSettings(n_layers=2, epochs=50))
    assert exp.trainer.fast is None
    exp.trainer.run()
    assert exp.trainer.history[-1] < 1.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU on this machine")
def test_the_notebooks_run_on_a_gpu():
    exp = Experiment(TrainSettings(), device="cuda")
    exp.trainer.run()
    assert round(exp.trainer.history[-1], 3) == 0.385


def test_a_model_saved_before_layers_and_held_out_text_still_loads():
    import io

    from minillm.checkpoint import load_checkpoint, save_checkpoint

    exp = Experiment(TrainSettings(epochs=20))
    exp.trainer.run()
    payload = torch.load(io.BytesIO(save_checkpoint(exp)), weights_only=True)
    for key in ("n_layers", "batch_size", "valid_share"):
        del payload["settings"][key]
    del payload["config"]["n_layers"]
    old = io.BytesIO()
    torch.save(payload, old)
    loaded = load_checkpoint(old.getvalue())
    assert loaded.settings.n_layers == 1 and loaded.settings.valid_share == 0.0
    assert loaded.trainer.history == exp.trainer.history
