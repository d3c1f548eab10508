"""Which tokens? experiments, shared by everyone on the server.

A tournament trains a model per tokenizer: 20 to 60 s of CPU. A class of 30 opening the
default experiment must train it once, not thirty times, and no page may wait for it. So an
experiment is a job in one registry for the whole server (`registry()`), keyed by what decides
its result: the corpus (its digest) and the settings.

- The first session to ask starts the job (`Registry.start`), in a thread of its own.
- A session asking for the same key while it runs gets the same job (`Registry.find`) and
  shows its progress; the page polls it with a timed fragment.
- A finished job leaves its result (a few kB) in a store bounded in entries and bytes;
  whoever asks later gets it at once.

The job trains each entrant in chunks (about CHUNK_SECONDS of CPU, at most CHUNK_MAX_STEPS
steps, never longer than CHUNK_WALL_SECONDS), each chunk holding one of the shared training
slots (`ui.model_state.training_slots`), which go first come, first served to these chunks
and to the Train page's alike: a class training on Train is not starved, and the job never
holds a slot between chunks. Like Train's, a chunk trains in one of the server's worker
processes when it has them (`minillm.workers`), so the pages' Python never waits on it.
Preparing an entrant (its tokens and windows) and scoring it take a slot too, in this
process.

Bounds: at most `MAX_JOBS` experiments train at once on the server (``MINILLM_TOURNAMENT_JOBS``,
default 3) and one per session; an experiment whose estimated CPU passes
``MINILLM_TOURNAMENT_SECONDS`` (default 240) is refused before it starts (`cost_problem`).

This module never calls Streamlit from the job's thread: the slots are handed over when the
registry is made, in a script run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Hashable

import streamlit as st

from minillm import tournament as T
from minillm import workers
from minillm.budget import Budgets
from ui import model_state
from ui.bounded_cache import BoundedCache, size_of

log = logging.getLogger(__name__)

CHUNK_SECONDS = model_state.CHUNK_SECONDS  # CPU per chunk, as Train's
CHUNK_MAX_STEPS = 50
CHUNK_WALL_SECONDS = model_state.CHUNK_WALL_SECONDS
SLOT_WAIT_SECONDS = model_state.SLOT_WAIT_SECONDS  # then look again (a free slot wakes it at once)
MAX_RESULTS = 64  # finished experiments kept for the whole server...
RESULTS_MB = 4  # ... and their bytes (a result is a few kB)
MAX_FAILURES = 16  # failed experiments remembered, so their pages can say why
CORPORA, CORPORA_MB = 32, 32  # generated or pasted corpora kept for the page's reruns


def _env_number(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


def max_jobs() -> int:
    return int(_env_number("MINILLM_TOURNAMENT_JOBS", 3))


def max_seconds() -> float:
    return _env_number("MINILLM_TOURNAMENT_SECONDS", 240.0)


class Busy(RuntimeError):
    """No new experiment now; the message says why and what to do."""


@dataclass(frozen=True)
class Line:
    """One entrant's progress, for a progress bar."""

    name: str
    steps_done: int
    steps: int
    result: T.EntrantResult | None  # once trained and scored


class Job:
    """One experiment being trained. Read it from any thread; only its own thread writes."""

    def __init__(self, key: Hashable, corpus: T.TournamentCorpus, settings: T.TournamentSettings,
                 owner: str | None):
        self.key, self.corpus, self.settings, self.owner = key, corpus, settings, owner
        self.state = "waiting"  # "waiting" for a slot, "preparing", "training", "done", "failed"
        self.names: list[str] = []  # the entrants, once their tokenizers are made
        self.steps_done: dict[str, int] = {}
        self.results: dict[str, T.EntrantResult] = {}
        self.result: T.TournamentResult | None = None
        self.error: str | None = None
        self.started = time.monotonic()
        self.waiting_for_slot = False
        self._finished = threading.Event()

    @property
    def done(self) -> bool:
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job is finished (tests, benchmarks); False if `timeout` passed."""
        return self._finished.wait(timeout)

    def lines(self) -> list[Line]:
        names = list(self.names)
        return [Line(n, self.steps_done.get(n, 0), self.settings.steps, self.results.get(n))
                for n in names]

    def share_done(self) -> float:
        """0..1: the steps trained so far, over all entrants."""
        names = list(self.names)
        if not names:
            return 0.0
        return sum(self.steps_done.get(n, 0) for n in names) / (len(names) * self.settings.steps)


class Registry:
    """Every experiment of the server: the ones training, and the results of finished ones."""

    def __init__(self, slots: model_state.FairSlots, max_jobs: int = 3,
                 max_results: int = MAX_RESULTS, max_bytes: float = RESULTS_MB * 1e6):
        self.slots, self.max_jobs = slots, max_jobs
        self.max_results, self.max_bytes = max_results, max_bytes
        self._running: dict[Hashable, Job] = {}
        self._results: OrderedDict[Hashable, tuple[T.TournamentResult, int]] = OrderedDict()
        self._failed: OrderedDict[Hashable, Job] = OrderedDict()
        self._lock = threading.Lock()

    # ---- what the page asks ------------------------------------------------------------

    def find(self, key: Hashable) -> T.TournamentResult | Job | None:
        """The finished result for `key`, or its job (training, or failed), or None."""
        with self._lock:
            if key in self._results:
                self._results.move_to_end(key)
                return self._results[key][0]
            return self._running.get(key) or self._failed.get(key)

    def running(self) -> list[Job]:
        with self._lock:
            return list(self._running.values())

    def start(self, key: Hashable, corpus: T.TournamentCorpus, settings: T.TournamentSettings,
              owner: str | None = None) -> Job | T.TournamentResult:
        """Start the experiment (or return the one already training, or its result).

        Raises `Busy` when the server trains `max_jobs` experiments already, or when `owner`
        (a session) has one training with other settings.
        """
        with self._lock:
            if key in self._results:
                return self._results[key][0]
            if key in self._running:
                return self._running[key]
            mine = [j for j in self._running.values() if owner is not None and j.owner == owner]
            if mine:
                raise Busy("Your other experiment is still training (its progress shows when "
                           "you choose its settings again). Start this one when it is done.")
            if len(self._running) >= self.max_jobs:
                raise Busy(f"The server is training {len(self._running)} experiments for others "
                           "right now. Try again in a minute, or choose settings someone "
                           "has already run (those show at once).")
            self._failed.pop(key, None)
            job = self._running[key] = Job(key, corpus, settings, owner)
        threading.Thread(target=self._run, args=(job,), daemon=True,
                         name=f"tournament-{corpus.digest[:8]}").start()
        return job

    def wait_idle(self, timeout: float = 300.0) -> bool:
        """Block until nothing is training (tests, benchmarks); False if `timeout` passed."""
        deadline = time.monotonic() + timeout
        for job in self.running():
            if not job.wait(max(0.0, deadline - time.monotonic())):
                return False
        return not self.running() or self.wait_idle(max(0.0, deadline - time.monotonic()))

    # ---- the job's own thread ----------------------------------------------------------

    @contextlib.contextmanager
    def _slot(self, job: Job):
        """Hold one training slot, after waiting in line with everyone else."""
        job.waiting_for_slot = True
        while not self.slots.acquire(timeout=SLOT_WAIT_SECONDS):
            pass
        job.waiting_for_slot = False
        try:
            yield
        finally:
            self.slots.release()

    def _run(self, job: Job) -> None:
        corpus, settings = job.corpus, job.settings
        try:
            T.check_lines(corpus.train, corpus.valid)
            job.state = "preparing"
            with self._slot(job):
                entrant_list = T.entrants(corpus.train, corpus.valid, settings)
            job.names = [e.name for e in entrant_list]
            for entrant in entrant_list:
                with self._slot(job):
                    match = T.Match(entrant, corpus.train, corpus.valid, settings)
                job.state = "training"
                while not match.done:
                    with self._slot(job):
                        _train_chunk(match)
                    job.steps_done[entrant.name] = match.steps_done
                with self._slot(job):
                    job.results[entrant.name] = match.result()
                del match  # its windows and model: only the result is kept
            job.result = T.finish([job.results[n] for n in job.names], corpus.train,
                                  corpus.valid, settings, corpus.floor_bits if corpus.floor_exact
                                  else None)
            job.state = "done"
        except T.TournamentError as error:
            job.error, job.state = str(error), "failed"
        except Exception as error:  # a bug: say so on the page, keep the server going
            log.exception("tournament job failed")
            job.error = (f"The experiment stopped with an error ({type(error).__name__}). "
                         "Try again; if it happens again, tell your teacher.")
            job.state = "failed"
        finally:
            self._finish(job)

    def _finish(self, job: Job) -> None:
        with self._lock:
            self._running.pop(job.key, None)
            if job.result is not None:
                size = size_of(job.result)
                if size <= self.max_bytes:
                    self._results[job.key] = (job.result, size)
                    total = sum(s for _, s in self._results.values())
                    while len(self._results) > self.max_results or total > self.max_bytes:
                        _, (_, dropped) = self._results.popitem(last=False)
                        total -= dropped
            else:
                self._failed[job.key] = job
                while len(self._failed) > MAX_FAILURES:
                    self._failed.popitem(last=False)
        job._finished.set()


def _train_chunk(match: T.Match) -> None:
    """One chunk of `match`'s training: in a worker process when the server has them
    (`minillm.workers`, as Train's chunks), else in this thread."""
    pool = workers.shared_pool()
    if pool is not None and workers.can_travel(match.trainer):
        pool.train_chunk(match.trainer, CHUNK_SECONDS, CHUNK_MAX_STEPS, CHUNK_WALL_SECONDS)
    else:
        match.train(CHUNK_MAX_STEPS, CHUNK_SECONDS, CHUNK_WALL_SECONDS)


@st.cache_resource(show_spinner=False)
def registry() -> Registry:
    """The one registry of the server (made in a script run: it takes the training slots)."""
    return Registry(model_state.training_slots(), max_jobs())


def session_id() -> str | None:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else None


def job_key(corpus: T.TournamentCorpus, settings: T.TournamentSettings) -> tuple:
    return (corpus.digest, settings)


# ---- corpora and costs, shared by the page's reruns ------------------------------------


@st.cache_resource(show_spinner=False)
def _corpora() -> BoundedCache:
    return BoundedCache(CORPORA, CORPORA_MB * 1e6)


def stories(story_settings, n_sentences: int = T.STORY_SENTENCES) -> T.TournamentCorpus:
    """Generated stories (shared by everyone: the same settings make the same text)."""
    return _corpora().get(("stories", story_settings, n_sentences),
                          lambda: T.story_corpus(story_settings, n_sentences))


def text(lines: tuple[str, ...], name: str) -> T.TournamentCorpus:
    """A preset or a student's text (raises `minillm.tournament.TournamentError`)."""
    return _corpora().get(("text", lines, name), lambda: T.text_corpus(lines, name))


@st.cache_data(max_entries=256, show_spinner=False)
def _estimate(digest: str, settings: T.TournamentSettings, _corpus) -> tuple[float, int]:
    vocab = T.vocab_estimates(_corpus.train, _corpus.valid, settings)
    return (T.estimated_seconds(_corpus.train, _corpus.valid, settings),
            max(vocab.values()))


def estimate(corpus: T.TournamentCorpus, settings: T.TournamentSettings) -> float:
    """About how many CPU seconds the experiment takes on this machine."""
    return _estimate(corpus.digest, settings, corpus)[0]


def cost_problem(corpus: T.TournamentCorpus, settings: T.TournamentSettings) -> str | None:
    """Why the server will not run this experiment (a sentence), or None."""
    seconds, biggest_vocab = _estimate(corpus.digest, settings, corpus)
    if seconds > max_seconds():
        return (f"This experiment would take about {seconds:.0f} s of CPU, more than this "
                f"server allows for one ({max_seconds():.0f} s): choose the quick budget, a "
                "smaller model, or a shorter text.")
    step_mb = T.step_bytes(biggest_vocab, settings) / 1e6
    if step_mb > Budgets.from_env().step_mb:
        return (f"One training step would need about {step_mb:.0f} MB (a vocabulary of "
                f"{biggest_vocab:,} ids): more than this server allows. Use a text with fewer "
                "different words or characters.")
    return None
