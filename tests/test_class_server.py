"""The class server's shared parts: training slots handed out in turn, chunks that end on
time, previews keyed by what decides them, seats that bring a model back after a reload, and
a run refused before it is built when it costs too much."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from dataclasses import replace

import pytest

from conftest import run_app, trained_experiment
from minillm.bpe import train_bpe
from minillm.data import ambiguous_contexts, conditional_entropy, loss_floor, visible_pairs
from minillm.corpus import CATS_AND_DOGS, COUNTRY_STYLE
from minillm.data import build_dataset
from minillm.experiment import Experiment, TrainSettings
from minillm.tokenizers import CharTokenizer, WordTokenizer
from ui import model_state, seats
from ui.bounded_cache import BoundedCache
from ui.model_state import FairSlots


# --- slots ------------------------------------------------------------------------------

def test_slots_go_to_the_one_waiting_longest():
    slots = FairSlots(1)
    assert slots.acquire()
    order, started = [], []

    def wait(name):
        started.append(name)
        assert slots.acquire(timeout=10)
        order.append(name)
        slots.release()

    threads = []
    for name in "abc":
        threads.append(threading.Thread(target=wait, args=(name,)))
        threads[-1].start()
        while slots.waiting() < len(threads):  # each one in line before the next comes
            time.sleep(0.001)
    # The holder releases and at once asks again: it must queue behind a, b and c.
    slots.release()
    assert slots.acquire(timeout=10)
    order.append("holder")
    slots.release()
    for t in threads:
        t.join()
    assert order == ["a", "b", "c", "holder"]


def test_a_wait_that_runs_out_leaves_the_line():
    slots = FairSlots(1)
    assert slots.acquire()
    assert not slots.acquire(timeout=0.05)
    assert slots.waiting() == 0
    slots.release()
    assert slots.acquire()


# --- chunks end on time -----------------------------------------------------------------

def test_a_chunk_of_a_slow_run_stops_after_the_epoch_that_crosses_its_budget(monkeypatch):
    monkeypatch.setenv("MINILLM_WORKERS", "0")  # in this process, where the slow run is
    # The CPU budget is what is tested: a busy machine's wall clock must not end the chunk first.
    monkeypatch.setattr(model_state, "time", SimpleNamespace(thread_time=time.thread_time,
                                                            monotonic=lambda: 0.0))
    exp = Experiment(replace(TrainSettings(), epochs=100))
    epochs = []
    real = exp.trainer.run

    def slow(steps=None, on_step=None):  # every epoch "costs" 0.2 s of this thread's CPU
        end = time.thread_time() + 0.2
        while time.thread_time() < end:
            pass
        epochs.append(steps)
        return real(steps, on_step)

    monkeypatch.setattr(exp.trainer, "run", slow)
    assert model_state.train_chunk(exp, seconds=0.25, wait=0)
    assert exp.trainer.epoch == 2  # 0.2 s, then 0.4 s: over 0.25 s, so it stops
    assert epochs == [1, 1]


# --- previews are keyed by what decides them ----------------------------------------------

def test_two_bpes_with_one_name_give_two_previews():
    from ui.train_widgets import preview

    a = train_bpe("\n".join(CATS_AND_DOGS), 20).encoding(20)
    b = train_bpe("\n".join(COUNTRY_STYLE), 20).encoding(20)
    assert a.name == b.name  # both "bpe-20"
    lines = CATS_AND_DOGS
    data_a = preview(lines, "bpe", 5, False, "last", a)[0]
    data_b = preview(lines, "bpe", 5, False, "last", b)[0]
    assert data_a.X.tolist() != data_b.X.tolist()
    assert data_a.tokenizer.encoding is a and data_b.tokenizer.encoding is b


def test_pre_split_on_and_off_are_two_previews():
    from ui.train_widgets import preview

    text = "\n".join(CATS_AND_DOGS)
    split = train_bpe(text, 40).encoding(40)
    whole = train_bpe(text, 40, regex_split=False).encoding(40)
    a = preview(CATS_AND_DOGS, "bpe", 5, False, "last", split)[0]
    b = preview(CATS_AND_DOGS, "bpe", 5, False, "last", whole)[0]
    assert a.tokenizer.encoding is split and b.tokenizer.encoding is whole


def test_the_shared_cache_is_bounded_in_bytes():
    cache = BoundedCache(max_entries=100, max_bytes=10_000)
    for i in range(20):
        cache.get(i, lambda: list(range(100)))  # ~3.7 kB each
    assert cache.bytes <= 10_000 and len(cache) == 2
    made = []
    cache.get(19, lambda: made.append(1))
    assert not made  # the most recent one is still there


def test_the_floor_counted_as_ids_equals_counting_tuples():
    for lines, tokenizer in ((CATS_AND_DOGS, WordTokenizer), (COUNTRY_STYLE, CharTokenizer)):
        for block in (1, 5, 16):
            for eos in (False, True):
                data = build_dataset(lines, tokenizer.fit(lines), block, eos)
                for objective in ("last", "every"):
                    pairs = visible_pairs(data, objective)
                    assert loss_floor(data, objective) == pytest.approx(
                        conditional_entropy(pairs), abs=1e-12)
                    rows = ambiguous_contexts(data, objective)
                    assert len(rows) <= 200
                    assert all(r["times"] >= 2 for r in rows)


# --- seats: a reload brings the model back ------------------------------------------------

def test_seat_store_restores_expires_and_stays_within_its_memory():
    clock = [0.0]
    store = seats.SeatStore(ttl_seconds=60, max_bytes=3e6, clock=lambda: clock[0])
    exp = trained_experiment()
    token = store.new_token()
    assert seats.TOKEN_FORMAT.match(token)
    store.keep(token, exp, [])
    assert store.get(token).experiment is exp
    assert store.get("x" * 32) is None and store.get("<script>") is None
    clock[0] = 61
    assert store.get(token) is None  # expired
    tokens = [store.new_token() for _ in range(5)]
    for i, t in enumerate(tokens):  # each ~1 MB: only the most recent ones stay
        clock[0] = 100 + i
        store.keep(t, trained_experiment(), [])
    assert tokens[-1] in store._seats and tokens[0] not in store._seats
    assert sum(s.kept_bytes() for s in store._seats.values()) <= 3e6


def test_a_keep_weighs_again_only_the_seats_that_changed(monkeypatch):
    """Every keep checks the store's memory; it must not walk every other student's model
    again (30 students' keeps would cost 30 x 30 walks), yet a run that trained on since is
    weighed anew."""
    store = seats.SeatStore(ttl_seconds=600, max_bytes=1e12)
    runs = [Experiment(TrainSettings(epochs=20)) for _ in range(6)]
    tokens = [store.new_token() for _ in runs]
    for token, exp in zip(tokens, runs):
        store.keep(token, exp, [])
    walks = []
    real = seats.Seat.kept_bytes
    monkeypatch.setattr(seats.Seat, "kept_bytes", lambda seat: walks.append(seat) or real(seat))
    store.keep(tokens[0], runs[0], [])  # nothing changed anywhere
    assert walks == []
    runs[3].trainer.run(5)  # one run trained on: only its seat is weighed again
    store.keep(tokens[0], runs[0], [])
    assert [w.experiment for w in walks] == [runs[3]]
    assert store._seats[tokens[3]].size() == real(store._seats[tokens[3]])


def test_a_reload_brings_back_the_model(monkeypatch):
    first = run_app("pages/generate.py")
    assert not first.exception
    first.button(key="generate_train_now").click().run()  # the notebook's model, trained
    assert not first.exception
    token = first.session_state[seats.TOKEN_KEY]
    trained = first.session_state["experiment"]
    assert trained.trainer.done

    monkeypatch.setattr(seats, "browser_token", lambda: token)  # the same browser, reloaded
    again = run_app("pages/generate.py")
    assert not again.exception
    assert again.session_state["experiment"] is trained
    assert not any("There is no trained model" in i.value for i in again.info)

    monkeypatch.setattr(seats, "browser_token", lambda: None)  # another browser: no model
    other = run_app("pages/generate.py")
    assert any("There is no trained model" in i.value for i in other.info)
    assert other.session_state[seats.TOKEN_KEY] != token


def test_a_shared_link_never_carries_the_seat():
    at = run_app("pages/train.py")
    token = at.session_state[seats.TOKEN_KEY]
    assert all(token not in str(v) for v in at.query_params.values())


# --- the Train page refuses what costs too much ---------------------------------------------

def test_train_refuses_a_run_past_the_budget_and_keeps_the_old_model(monkeypatch):
    at = run_app("pages/train.py")
    at.button(key="train_go").click().run()
    old = at.session_state["experiment"]
    monkeypatch.setenv("MINILLM_RUN_SECONDS", "0.2")
    at.run()
    errors = [e.value for e in at.error]
    assert any(e.startswith("This run is too big for this server") for e in errors)
    assert "lower the epochs to" in " ".join(errors)
    assert at.button(key="train_go").disabled
    assert at.session_state["experiment"] is old


def test_generate_says_plainly_that_a_half_trained_run_is_paused():
    from conftest import page_with

    exp = Experiment(TrainSettings())
    exp.trainer.run(120)
    at = page_with("pages/generate.py", exp)
    paused = [i.value for i in at.info if "Training is paused" in i.value]
    assert paused and "epoch 120 of 300" in paused[0]
    done = page_with("pages/generate.py", trained_experiment())
    assert not any("Training is paused" in i.value for i in done.info)


def test_two_sessions_with_same_named_bpes_see_their_own_previews():
    """Two students' BPEs are both called 'your text' with 40 merges, trained on different
    texts: each Train page must show its own student's vocabulary and windows."""
    from conftest import app_test

    def session(text):
        at = app_test("pages/train.py")
        at.run()
        at.session_state["trained_bpe"] = {"result": train_bpe(text, 40), "merges": 40,
                                           "name": "your text"}
        at.run()
        at.radio(key="train_tokenizer").set_value("bpe").run()
        assert not at.exception
        return at

    a = session("\n".join(CATS_AND_DOGS))
    b = session("\n".join(COUNTRY_STYLE))
    vocab_a, vocab_b = (list(at.dataframe[0].value["token"]) for at in (a, b))
    assert vocab_a != vocab_b
    expected_b = [b.session_state["trained_bpe"]["result"].encoding(40).decode_single_token_bytes(i)
                  for i in range(256, 296)]
    assert any(p.decode("utf-8", "replace").strip() in " ".join(vocab_b) for p in expected_b[-5:])
