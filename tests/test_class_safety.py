"""A class on one server: the same seed gives the same numbers whatever else runs, and a run
that costs too much is refused before it is built, with a sentence that says what to lower."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
import torch

from minillm import budget
from minillm.budget import Budgets, BudgetError, budget_problem, run_cost
from minillm.corpus import COUNTRY_STYLE
from minillm.experiment import Experiment, TrainSettings
from minillm.model import MiniTransformer, ModelConfig, build_model

N_THREADS = 16


def _in_threads(fn, n=N_THREADS):
    """Call fn(i) in n threads released at the same moment; their results in order."""
    results, barrier = [None] * n, threading.Barrier(n)

    def run(i):
        barrier.wait()
        results[i] = fn(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_seeded_weights_equal_the_notebooks_global_seed():
    """build_model(seed) draws from its own generator, yet gives torch.manual_seed's weights."""
    for config in (ModelConfig(vocab_size=15),
                   ModelConfig(vocab_size=40, block_size=16, d_model=64, n_heads=8, causal=True,
                               loss_on="every")):
        for seed in (0, 42, 123_456):
            torch.manual_seed(seed)
            reference = MiniTransformer(config).state_dict()
            built = build_model(config, seed).state_dict()
            assert all(torch.equal(reference[k], built[k]) for k in reference)


def test_build_model_leaves_the_global_generator_alone():
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    build_model(ModelConfig(vocab_size=15), seed=42)
    assert torch.equal(torch.rand(3), expected)


def test_concurrent_builds_with_one_seed_give_identical_weights():
    config = ModelConfig(vocab_size=15)
    reference = build_model(config, 42).state_dict()
    for _ in range(3):  # the race was common, not certain: try a few times
        built = _in_threads(lambda i: build_model(config, 42).state_dict())
        assert all(torch.equal(s[k], reference[k]) for s in built for k in reference)


def test_a_class_pressing_train_together_all_get_the_notebooks_loss():
    single = Experiment(TrainSettings())
    single.trainer.run()

    def train(i):
        exp = Experiment(TrainSettings())
        while not exp.trainer.done:  # in chunks, as the page trains
            exp.trainer.run(25)
        return exp.trainer.history

    histories = _in_threads(train, n=8)
    assert all(h == single.trainer.history for h in histories)
    assert round(single.trainer.history[-1], 4) == 0.3845


# --- the cost model ---------------------------------------------------------------------

ABUSER = TrainSettings(tokenizer="word", block_size=16, d_model=128, n_heads=16, loss_on="every",
                       causal=True, epochs=2000)


def test_the_notebooks_run_fits_the_default_budgets():
    cost = run_cost(TrainSettings(), windows=28, vocab_size=15)
    assert cost.parameters == Experiment(TrainSettings()).model.num_parameters()
    assert budget_problem(cost, TrainSettings(), 28, 15, Budgets()) is None


def test_the_largest_page_settings_are_refused_with_what_to_lower():
    message = budget_problem(run_cost(ABUSER, 10_000, 5_000), ABUSER, 10_000, 5_000, Budgets())
    assert message.startswith("This run is too big for this server")
    assert "memory" in message and "GB" in message


def test_each_suggested_change_fits():
    settings = replace(ABUSER, lines=COUNTRY_STYLE, tokenizer="character", d_model=64, n_heads=4)
    exp = Experiment(replace(settings, epochs=10))  # the data's size, for this corpus
    windows, vocab = len(exp.dataset), exp.dataset.vocab_size
    budgets = Budgets(run_seconds=20.0)
    message = budget_problem(run_cost(settings, windows, vocab), settings, windows, vocab, budgets)
    assert "lower the epochs to" in message
    epochs = int(message.split("lower the epochs to ")[1].split(",")[0].split(".")[0].replace(",", ""))
    assert budget_problem(run_cost(replace(settings, epochs=epochs), windows, vocab),
                          settings, windows, vocab, budgets) is None


def test_distinct_tokens_count_not_words():
    """20,000 different CJK characters are one 'word' per line but 20,000 ids for characters."""
    lines = tuple("".join(chr(0x4E00 + i) for i in range(start, start + 100))
                  for start in range(0, 20_000, 100))
    settings = TrainSettings(lines=lines, tokenizer="character", epochs=10)
    with pytest.raises(BudgetError, match="keep about"):
        Experiment(settings, budgets=Budgets())


def test_a_refused_run_builds_no_model(monkeypatch):
    built = []
    monkeypatch.setattr("minillm.experiment.build_model",
                        lambda *a, **k: built.append(a) or build_model(*a, **k))
    with pytest.raises(BudgetError):
        Experiment(TrainSettings(epochs=2000), budgets=Budgets(run_seconds=0.01))
    assert not built


def test_budgets_come_from_the_environment():
    b = Budgets.from_env({"MINILLM_STEP_MB": "64", "MINILLM_RUN_SECONDS": "inf",
                          "MINILLM_KEPT_MB": "-3", "MINILLM_EPOCH_SECONDS": "abc"})
    assert b.step_mb == 64 and b.run_seconds == Budgets().run_seconds
    assert b.kept_mb == Budgets().kept_mb and b.epoch_seconds == Budgets().epoch_seconds


def test_settings_outside_the_pages_ranges_are_named():
    problems = budget.settings_problems(TrainSettings(epochs=10**9, d_model=1, n_heads=1))
    assert any("epochs" in p for p in problems) and any("d_model" in p for p in problems)
    assert budget.settings_problems(TrainSettings()) == []


# --- expensive results once per run -------------------------------------------------------

def test_the_summary_is_computed_once_per_state(monkeypatch):
    exp = Experiment(replace(TrainSettings(), loss_on="every", causal=True, epochs=20))
    exp.trainer.run()
    calls = []
    real = exp._summary_now
    monkeypatch.setattr(exp, "_summary_now", lambda: calls.append(1) or real())
    first = exp.summary()
    assert exp.summary() == first and len(calls) == 1
    exp.trainer.epochs = 30
    exp.trainer.run(5)
    exp.summary()
    assert len(calls) == 2


def test_settings_must_be_whole_numbers_not_bools_or_floats():
    problems = budget.settings_problems(TrainSettings(block_size=True, d_model=32.0, epochs=300.0))
    assert any("block size" in p for p in problems)
    assert any("d_model" in p for p in problems) and any("epochs" in p for p in problems)


def test_every_model_the_budgets_allow_fits_in_an_upload_and_on_the_board():
    """A model the server lets a student train must also load back from its file, and can be
    posted to the class board (its limit was 5 MB while this model's file is larger)."""
    from minillm.checkpoint import MAX_CHECKPOINT_BYTES, save_checkpoint
    from minillm.store.limits import BoardLimits

    words = tuple(" ".join(f"w{(i * 8 + j) % 1000}" for j in range(8)) for i in range(130))
    settings = TrainSettings(lines=words, d_model=128, n_heads=4, epochs=10)
    exp = Experiment(settings, budgets=Budgets())  # accepted by the default budgets
    exp.trainer.run()
    size = len(save_checkpoint(exp))
    assert size <= MAX_CHECKPOINT_BYTES
    assert size <= BoardLimits().model_bytes, f"a {size:,}-byte model cannot be posted"
