"""The model a student trained, shared by the Train, Generate and Attention pages.

Session-state contract (one browser tab = one session = one model):

- ``st.session_state["experiment"]``: the current `minillm.experiment.Experiment` (model,
  dataset, trainer and its history), or absent / None before the first Train. Generate and
  Attention read it with `current_experiment()`; only the Train page replaces it.
- ``st.session_state["past_runs"]``: at most `MAX_PAST_RUNS` earlier runs, oldest first, as
  light dicts ``{"label": settings.label(), "history": [loss, ...], "floor": float}`` (no
  weights), drawn as faint curves to compare.

A new run (`start_experiment`) or `reset()` puts the current run's curve into ``past_runs`` and
drops its model; nothing else replaces the model, so changing a setting never loses it.

Training is shared by everyone on one server, so at most `training_slots()` chunks train at
the same moment (env ``MINILLM_TRAINING_SLOTS``, default 1). One, even on two cores: the
sessions share one Python process, and a tiny model's training is mostly Python, which runs
one thread at a time; two trainings at once only hand that lock back and forth (measured with
30 students: 25 CPU-s and p95 23 s with one slot, 33 CPU-s and p95 26 s with two). A slot is held
for one bounded chunk (`train_chunk`), never across reruns: a session that finds no free slot
waits for one (asleep, up to `SLOT_WAIT_SECONDS`), then tries again on its next fragment run.
A full page run does not wait (``wait=0``): the page shows "waiting" at once instead.
"""

from __future__ import annotations

import os
import threading
import time

import streamlit as st

from minillm.experiment import Experiment, TrainSettings

EXPERIMENT = "experiment"
PAST_RUNS = "past_runs"
MAX_PAST_RUNS = 5
CHUNK_SECONDS = 0.25  # one chunk trains for about this much CPU time, then the page redraws
CHUNK_MAX_EPOCHS = 50  # ... and never more epochs than this
SUB_STEPS = 5  # epochs between two looks at the clock
SLOT_WAIT_SECONDS = 5.0  # a session with no free slot sleeps up to this long for one before
# redrawing (a slot that comes free wakes it at once: the wait only spares redraws)


def current_experiment() -> Experiment | None:
    """The model this session trained last (trained fully, partly, or not yet), or None."""
    return st.session_state.get(EXPERIMENT)


def past_runs() -> list[dict]:
    """Earlier runs of this session, oldest first (at most MAX_PAST_RUNS)."""
    return st.session_state.setdefault(PAST_RUNS, [])


def _archive_current() -> None:
    exp = current_experiment()
    if exp is not None and exp.trainer.history:
        runs = past_runs()
        runs.append({"label": exp.settings.label(), "history": list(exp.trainer.history),
                     "floor": exp.floor})
        del runs[:-MAX_PAST_RUNS]


def start_experiment(settings: TrainSettings, bpe=None) -> Experiment:
    """A new untrained run: the current one becomes a faint curve, its model is dropped.

    Raises what `Experiment` raises (ValueError) without touching the current model.
    """
    exp = Experiment(settings, bpe=bpe)  # first: a bad setting must not cost the old model
    _archive_current()
    st.session_state[EXPERIMENT] = exp
    return exp


def adopt(exp: Experiment) -> None:
    """Make a loaded model the current one (the current run becomes a faint curve)."""
    _archive_current()
    st.session_state[EXPERIMENT] = exp


def reset() -> None:
    """No current model any more (its curve is kept among the past runs)."""
    _archive_current()
    st.session_state[EXPERIMENT] = None


@st.cache_resource(show_spinner="Loading PyTorch's optimizer (once per server start)…")
def warm_up() -> None:
    """Import what the first optimizer imports (torch._dynamo: seconds, once per process), so
    the first Train does not look frozen. Called when the Train page opens."""
    import torch._dynamo  # noqa: F401


@st.cache_resource(show_spinner=False)
def training_slots() -> threading.BoundedSemaphore:
    """One semaphore for the whole server: how many chunks may train at the same time."""
    slots = int(os.environ.get("MINILLM_TRAINING_SLOTS", "1"))
    return threading.BoundedSemaphore(max(1, slots))


def train_chunk(exp: Experiment, seconds: float | None = None,
                max_epochs: int | None = None, wait: float | None = None) -> bool:
    """Train `exp` for one bounded chunk (default: CHUNK_SECONDS of CPU, at most
    CHUNK_MAX_EPOCHS); False, with nothing trained, when no slot came free within `wait`
    seconds (default SLOT_WAIT_SECONDS; 0 to only take a slot that is free now).

    Under load (bench/load_test.py: 30 sessions, 2 cores) two things keep the server's CPU on
    training rather than on redrawing: a session waiting for a slot sleeps in the semaphore
    instead of redrawing its page every tick, and the budget is this thread's CPU time, not the
    wall clock: a busy server gives a training thread ~13% of the wall clock, so a wall-clock
    budget bought ~10 epochs a chunk (30 chunks and redraws a run) instead of 50 (6).
    """
    seconds = CHUNK_SECONDS if seconds is None else seconds
    max_epochs = CHUNK_MAX_EPOCHS if max_epochs is None else max_epochs
    wait = SLOT_WAIT_SECONDS if wait is None else wait
    slots = training_slots()
    if not slots.acquire(timeout=max(0.0, wait)):  # timeout 0: only a slot free right now
        return False
    try:
        deadline = time.thread_time() + seconds
        trained = 0
        while not exp.trainer.done and trained < max_epochs and time.thread_time() < deadline:
            steps = min(SUB_STEPS, max_epochs - trained)
            exp.trainer.run(steps)
            trained += steps
    finally:
        slots.release()
    return True
