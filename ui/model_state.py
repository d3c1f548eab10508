"""The model a student trained, shared by the Train, Generate and Attention pages.

Session-state contract (one browser tab = one session = one model):

- ``st.session_state["experiment"]``: the current `minillm.experiment.Experiment` (model,
  dataset, trainer and its history), or absent / None before the first Train. Generate and
  Attention read it with `current_experiment()`; only the Train page replaces it.
- ``st.session_state["past_runs"]``: at most `MAX_PAST_RUNS` earlier runs, oldest first, as
  light dicts ``{"label": settings.label(), "history": [loss, ...], "floor": float,
  "start_loss": float}`` (no weights; ln|V| and the floor are that run's own), drawn as faint
  curves to compare.

A new run (`start_experiment`) or `reset()` puts the current run's curve into ``past_runs`` and
drops its model; nothing else replaces the model, so changing a setting never loses it.

Both are also kept in the session's seat (`ui.seats`), so a reload of the page gets them back.

Training is shared by everyone on one server, so at most `training_slots()` chunks train at
the same moment (env ``MINILLM_TRAINING_SLOTS``, default two per worker process of
`minillm.workers` (`default_slots`), or 1 with ``MINILLM_WORKERS=0``), and the slots are handed out
first come, first served (`FairSlots`): a student whose chunks are long waits in line like
everyone else, so thirty default runs are not stuck behind one big one. In the server's own
process one slot is right even on two cores: the sessions share one Python process, and a
tiny model's training is mostly Python, which runs one thread at a time; two trainings at once
only hand that lock back and forth. A slot is held
for one bounded chunk (`train_chunk`: about CHUNK_SECONDS of CPU and never more than
CHUNK_WALL_SECONDS of wall clock, checked after every epoch; `minillm.budget` refuses runs
whose single epoch would take longer), never across reruns: a session that finds no free slot
waits for one (asleep, up to `SLOT_WAIT_SECONDS`), then tries again on its next fragment run.
A full page run does not wait (``wait=0``): the page shows "waiting" at once instead, except
a Train click's, which waits up to CLICK_SLOT_WAIT_SECONDS for its first chunk, saying so (a
run that ends in that chunk is drawn done by the click alone: no timer reruns, no second page).
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque

import streamlit as st

from minillm import workers
from minillm.budget import Budgets
from minillm.experiment import Experiment, TrainSettings
from ui import seats

EXPERIMENT = "experiment"
PAST_RUNS = "past_runs"
MAX_PAST_RUNS = 5
CHUNK_SECONDS = 0.25  # one chunk trains for about this much CPU time, then the page redraws
CHUNK_MAX_EPOCHS = 50  # ... and never more epochs than this
BUSY_POOL_EPOCHS, BUSY_POOL_SECONDS = 6, 2  # a worker's chunk while others wait in line:
# this many times the epochs and the CPU time (see train_chunk)
CHUNK_WALL_SECONDS = 1.0  # ... and never holds a slot longer than this, however busy the server
ACTIVE_SECONDS = 2.0  # a run that started or asked for a chunk this recently is training now
CLICK_SLOT_WAIT_SECONDS = 3.0  # a Train click's own page run waits at most this long for a slot
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
                     "floor": exp.floor, "start_loss": exp.start_loss})
        del runs[:-MAX_PAST_RUNS]


def _make_current(exp: Experiment | None) -> None:
    _archive_current()
    st.session_state[EXPERIMENT] = exp
    seats.keep(exp, past_runs())  # a reload of the page finds it again


def budgets() -> Budgets:
    """The server's budgets for one run (environment variables, see minillm.budget)."""
    return Budgets.from_env()


def start_experiment(settings: TrainSettings, bpe=None, line_nats=None,
                     story_settings=None) -> Experiment:
    """A new untrained run: the current one becomes a faint curve, its model is dropped.

    `line_nats` and `story_settings`: for generated stories, each line's nats under the
    grammar (the held-out floor) and the grammar's knobs (Generate parses with them).

    Raises what `Experiment` raises (ValueError, and `minillm.budget.BudgetError` for a run
    the server cannot afford) without touching the current model.
    """
    # First: a bad setting costs nothing. A class server has no GPU: always the CPU.
    exp = Experiment(settings, bpe=bpe, budgets=budgets(), line_nats=line_nats,
                     story_settings=story_settings, device="cpu")
    _make_current(exp)
    training_now().note(exp.trainer)  # counted from the click, before its first chunk asks
    return exp


def adopt(exp: Experiment) -> None:
    """Make a loaded model the current one (the current run becomes a faint curve)."""
    _make_current(exp)


def reset() -> None:
    """No current model any more (its curve is kept among the past runs)."""
    _make_current(None)


@st.cache_resource(show_spinner="Loading PyTorch's optimizer (once per server start)…")
def warm_up() -> None:
    """Import what the first optimizer imports (torch._dynamo: seconds, once per process), so
    the first Train does not look frozen. Called when the Train page opens."""
    import torch._dynamo  # noqa: F401


class FairSlots:
    """At most `n` holders at once, served in the order they asked (a FIFO semaphore).

    Python's own semaphore lets a thread that just released take the slot straight back
    before the sleepers wake; here a released slot goes to the one waiting longest.
    """

    def __init__(self, n: int):
        self.size = max(1, n)
        self._free = self.size
        self._lock = threading.Lock()
        self._line: deque[threading.Event] = deque()

    def acquire(self, timeout: float = 0.0) -> bool:
        """Take a slot, waiting up to `timeout` seconds in line; False if none came."""
        with self._lock:
            if self._free and not self._line:
                self._free -= 1
                return True
            if timeout <= 0:
                return False
            ticket = threading.Event()
            self._line.append(ticket)
        if ticket.wait(timeout):
            return True
        with self._lock:
            if ticket.is_set():  # handed over just as the wait ran out
                return True
            self._line.remove(ticket)
            return False

    def release(self) -> None:
        with self._lock:
            if self._line:
                self._line.popleft().set()  # straight to the next in line
            else:
                self._free += 1

    def waiting(self) -> int:
        return len(self._line)


def default_slots(worker_processes: int | None = None) -> int:
    """Two chunks per worker process (one training, the next already sent, so a worker never
    idles while the busy server hands it the next), or one in the server's own process.

    >>> default_slots(2), default_slots(0)
    (4, 1)
    """
    n = workers.workers_from_env() if worker_processes is None else worker_processes
    return 2 * n if n > 0 else 1


@st.cache_resource(show_spinner=False)
def training_slots() -> FairSlots:
    """One line for the whole server: how many chunks may train at the same time."""
    try:
        slots = int(os.environ.get("MINILLM_TRAINING_SLOTS", str(default_slots())))
    except ValueError:
        slots = 1
    return FairSlots(slots)


class TrainingNow:
    """The runs of this server that are training now: started, or asked for a chunk, within
    the last ACTIVE_SECONDS and not done (a paused or abandoned run drops out by itself).

    Thirty Train clicks arrive together, but the first pages to reach their first chunk find
    nobody in line yet: the others are still drawing their pages. Counted from the click,
    the class is seen to be busy from its first chunk.

    >>> now = [0.0]; runs = TrainingNow(clock=lambda: now[0])
    >>> runs.note("a"); runs.note("b"); runs.count()
    2
    >>> runs.note("a", done=True); runs.count()
    1
    >>> now[0] = ACTIVE_SECONDS + 0.1; runs.count()
    0
    """

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[int, float] = {}

    def note(self, run, done: bool = False) -> None:
        with self._lock:
            if done:
                self._seen.pop(id(run), None)
            else:
                self._seen[id(run)] = self._clock()

    def count(self) -> int:
        with self._lock:
            since = self._clock() - ACTIVE_SECONDS
            for key in [key for key, seen in self._seen.items() if seen < since]:
                del self._seen[key]
            return len(self._seen)


@st.cache_resource(show_spinner=False)
def training_now() -> TrainingNow:
    """One count for the whole server (see train_chunk)."""
    return TrainingNow()


_RUN_LOCKS_GUARD = threading.Lock()


def _run_lock(exp: Experiment) -> threading.Lock:
    """One lock per run: two tabs of one browser share a seat, and so may share a run."""
    with _RUN_LOCKS_GUARD:
        lock = getattr(exp, "_train_lock", None)
        if lock is None:
            lock = exp._train_lock = threading.Lock()
        return lock


def train_chunk(exp: Experiment, seconds: float | None = None,
                max_epochs: int | None = None, wait: float | None = None) -> bool:
    """Train `exp` for one bounded chunk (default: CHUNK_SECONDS of CPU, at most
    CHUNK_MAX_EPOCHS, never longer than CHUNK_WALL_SECONDS of wall clock); False, with nothing
    trained, when no slot came free within `wait` seconds (default SLOT_WAIT_SECONDS; 0 to
    only take a slot that is free now) or another tab is training this same run.

    Under load (bench/load_test.py: 30 sessions, 2 cores) two things keep the server's CPU on
    training rather than on redrawing: a session waiting for a slot sleeps in line instead of
    redrawing its page every tick, and the budget is this thread's CPU time, not the wall
    clock (a busy server gives a training thread a small share of the wall clock, and a
    wall-clock budget alone buys few epochs a chunk: many more chunks and redraws a run). The
    wall-clock cap still bounds how long one chunk can keep everyone else waiting.
    """
    default_size = seconds is None and max_epochs is None
    seconds = CHUNK_SECONDS if seconds is None else seconds
    wait = SLOT_WAIT_SECONDS if wait is None else wait
    lock = _run_lock(exp)
    if not lock.acquire(blocking=False):
        return False
    running = training_now()
    running.note(exp.trainer)
    try:
        slots = training_slots()
        if not slots.acquire(timeout=max(0.0, wait)):
            return False
        try:
            pool = workers.shared_pool() if workers.can_travel(exp.trainer) else None
            max_epochs = CHUNK_MAX_EPOCHS if max_epochs is None else max_epochs
            if pool is not None and default_size and busy(slots):
                # A busy class: each round trip and redraw costs the server time that others
                # in line wait for, and a worker's chunk holds none of the server's time: fewer,
                # longer chunks. (Alone, a student's curve moves in small steps.) Short
                # chunks for the first clicks of a class would send those students to the
                # back of the line after each one: the first to click would finish last.
                seconds, max_epochs = seconds * BUSY_POOL_SECONDS, max_epochs * BUSY_POOL_EPOCHS
            if pool is not None:  # MINILLM_WORKERS: in a worker process, truly in parallel
                pool.train_chunk(exp.trainer, seconds, max_epochs,
                                 min(CHUNK_WALL_SECONDS, max(seconds, 0.0) * 4))
                return True
            deadline = time.thread_time() + seconds
            wall_deadline = time.monotonic() + min(CHUNK_WALL_SECONDS, max(seconds, 0.0) * 4)
            trained = 0
            while (not exp.trainer.done and trained < max_epochs
                   and time.thread_time() < deadline and time.monotonic() < wall_deadline):
                exp.trainer.run(1)  # one epoch at a time: the clock is read after each
                trained += 1
        finally:
            slots.release()
    finally:
        running.note(exp.trainer, done=exp.trainer.done)
        lock.release()
    return True


def busy(slots: FairSlots) -> bool:
    """Whether more runs want a slot than there are: someone in line, or more runs training
    now than slots (those not in line yet are about to be)."""
    return slots.waiting() > 0 or training_now().count() > slots.size
