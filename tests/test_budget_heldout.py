"""The cost model counts the held-out checks: a forward pass over every held-out window at the
start and about every 50th of the run. On a mini-batch run one check can cost more than
hundreds of steps, and it scores up to 4,096 windows at once: a run must not pass the budget
on its training steps alone and then spend seconds (and memory) on its checks."""

from __future__ import annotations

from dataclasses import replace

import pytest

from minillm import budget, train
from minillm.budget import Budgets, BudgetError, run_cost
from minillm.corpus import CATS_AND_DOGS
from minillm.data import build_dataset
from minillm.experiment import Experiment, TrainSettings
from minillm.model import ModelConfig, build_model
from minillm.stories import StorySettings, generate_stories
from minillm.tokenizers import WordTokenizer

# A mini-batch run on generated stories: each step reads 32 windows, each check thousands.
STORIES = generate_stories(StorySettings(), 1_000).by_story()[0]
MINI_BATCH = TrainSettings(lines=STORIES, tokenizer="character", block_size=16, d_model=32,
                           n_heads=2, loss_on="every", causal=True, n_layers=2, batch_size=32,
                           epochs=300, valid_share=0.3)


def test_held_out_checks_add_to_the_run_and_to_the_epoch_that_does_one():
    without = run_cost(replace(MINI_BATCH, valid_share=0.0), 20_000, 40)
    held = run_cost(MINI_BATCH, 20_000, 40)
    assert held.evaluations == budget.evaluations(300) == 51 and held.eval_seconds > 0
    # One check over ~8,600 windows costs more than many steps of 32 windows each.
    assert held.eval_seconds > 10 * without.epoch_seconds
    assert held.run_seconds == pytest.approx(without.run_seconds + 51 * held.eval_seconds)
    assert held.epoch_seconds == pytest.approx(without.epoch_seconds + held.eval_seconds)


def test_the_held_out_windows_given_are_the_ones_counted():
    estimated = run_cost(MINI_BATCH, 20_000, 40)
    assert budget.estimated_valid_windows(MINI_BATCH, 20_000) == 8_572  # 30% of all windows
    exact = run_cost(MINI_BATCH, 20_000, 40, valid_windows=8_572)
    assert exact == estimated
    assert run_cost(MINI_BATCH, 20_000, 40, valid_windows=0).evaluations == 0
    assert run_cost(MINI_BATCH, 20_000, 40, valid_windows=20_000).run_seconds > exact.run_seconds


def test_a_check_scores_thousands_of_windows_at_once_and_that_memory_counts():
    """A large vocabulary, scored on every position: a step of 8 windows is small, a check of
    4,096 windows at once is not."""
    settings = replace(MINI_BATCH, tokenizer="word", batch_size=8)
    without = run_cost(replace(settings, valid_share=0.0), 20_000, 5_000)
    held = run_cost(settings, 20_000, 5_000)
    scores = budget.EVAL_ROWS * settings.block_size * 5_000 * budget.FLOAT_BYTES
    assert without.step_bytes < scores <= held.step_bytes
    assert budget.EVAL_ROWS == train.EVAL_ROWS  # the trainer scores this many at a time


def test_a_run_that_fits_only_without_its_checks_is_refused_before_it_is_built():
    exp = Experiment(replace(MINI_BATCH, epochs=10), device="cpu")  # the data's real sizes
    windows, vocab, valid = len(exp.dataset), exp.dataset.vocab_size, len(exp.valid)
    steps_only = run_cost(MINI_BATCH, windows, vocab, valid_windows=0)
    budgets = Budgets(run_seconds=steps_only.run_seconds * 1.01,
                      epoch_seconds=steps_only.epoch_seconds * 1.01)
    with pytest.raises(BudgetError, match="This run is too big for this server"):
        Experiment(MINI_BATCH, budgets=budgets, device="cpu")
    assert run_cost(MINI_BATCH, windows, vocab, valid).run_seconds > budgets.run_seconds
    # With no held-out text the same run fits those budgets.
    Experiment(replace(MINI_BATCH, valid_share=0.0), budgets=budgets, device="cpu")


@pytest.mark.parametrize("epochs", [10, 49, 50, 51, 120, 301])
def test_the_checks_counted_are_the_checks_the_trainer_makes(epochs):
    data = build_dataset(CATS_AND_DOGS, WordTokenizer.fit(CATS_AND_DOGS), 5)
    config = ModelConfig(vocab_size=data.vocab_size, d_model=8, n_heads=2)
    trainer = train.Trainer(build_model(config, seed=0), data, epochs=epochs, valid=data)
    trainer.run()
    assert len(trainer.valid_history) == budget.evaluations(epochs)
