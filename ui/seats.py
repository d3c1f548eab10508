"""A student's seat on the server: their model and past runs survive a reload of the page.

Streamlit gives every browser connection a new session, so F5 (or a dropped Wi-Fi) used to
lose the student's model. Now each browser gets a random token in a cookie (never in the
address bar: a teacher who copies the link to the class hands out settings, not their model).
The server keeps, under that token, a reference to the session's current experiment and its
past runs, for a bounded time and within a bounded amount of memory. A new session whose
browser sends a token the server knows gets that model back.

- Tokens are made by the server (`secrets.token_urlsafe`, 192 bits): nobody can guess another
  student's. A cookie with a token the server does not know (expired, forged) is replaced.
- Seats expire `MINILLM_SEAT_HOURS` (default 3) after their last use, and when all seats'
  models together pass `MINILLM_SEATS_MB` (default 1024: 1 GB for 30 students) the least
  recently used ones are dropped first.
- This module holds references only; `ui.model_state` decides what the model is and calls
  `keep()` whenever it changes.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
import time
from dataclasses import dataclass, field

import streamlit as st

COOKIE = "minillm_seat"
TOKEN_KEY = "seat_token"  # session state: this session's token
TOKEN_FORMAT = re.compile(r"^[A-Za-z0-9_-]{32}$")  # what token_urlsafe(24) makes


def _env_number(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 and value != float("inf") else default


@dataclass
class Seat:
    experiment: object | None = None
    past_runs: list = field(default_factory=list)
    last_seen: float = field(default_factory=time.monotonic)
    # (the run measured, how far it had trained, kept_bytes then): the run itself, not its
    # id(), which a new run may reuse once the old one is gone
    _measured: tuple = field(default=(None, None, 0), repr=False, compare=False)

    def size(self) -> int:
        """`kept_bytes`, measured again only when the run changed or trained on (snapshots and
        the optimizer's state grow with the epochs): every keep weighs every seat, and walking
        30 models' tensors on each of 30 students' keeps made a class's keeps cost the square
        of its size."""
        exp = self.experiment
        progress = None if exp is None else (
            exp.trainer.epoch, len(exp.trainer.snapshots), len(exp.trainer.optimizer.state))
        run, measured_at, size = self._measured
        if run is not exp or measured_at != progress:
            size = self.kept_bytes()
            self._measured = (exp, progress, size)
        return size

    def kept_bytes(self) -> int:
        """The memory this seat keeps alive: its model's tensors (weights, optimizer,
        snapshots) and its dataset."""
        exp = self.experiment
        if exp is None:
            return 0
        tensors = list(exp.model.state_dict().values())
        tensors += [t for snap in exp.trainer.snapshots.values() for t in snap.values()]
        for entry in exp.trainer.optimizer.state.values():
            tensors += [v for v in entry.values() if hasattr(v, "nbytes")]
        tensors += [exp.dataset.X, exp.dataset.Y]
        weights = sum(p.nbytes for p in exp.model.parameters())
        return int(sum(t.nbytes for t in tensors) + 2 * weights)  # + gradients, best weights


class SeatStore:
    """Token -> Seat for the whole server, bounded in time and memory (thread-safe)."""

    def __init__(self, ttl_seconds: float, max_bytes: float, clock=time.monotonic):
        self.ttl, self.max_bytes, self.clock = ttl_seconds, max_bytes, clock
        self._seats: dict[str, Seat] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seats)

    def new_token(self) -> str:
        return secrets.token_urlsafe(24)

    def get(self, token: str | None) -> Seat | None:
        """The seat for `token` if it is known and not expired (its clock restarts)."""
        if not isinstance(token, str) or not TOKEN_FORMAT.match(token):
            return None
        with self._lock:
            self._expire()
            seat = self._seats.get(token)
            if seat is not None:
                seat.last_seen = self.clock()
            return seat

    def keep(self, token: str, experiment, past_runs: list) -> None:
        """Remember this session's current model and past runs under `token`."""
        with self._lock:
            seat = self._seats.setdefault(token, Seat())
            seat.experiment, seat.past_runs, seat.last_seen = experiment, past_runs, self.clock()
            self._expire()
            self._shrink(keep=token)

    def _expire(self) -> None:
        now = self.clock()
        for token in [t for t, s in self._seats.items() if now - s.last_seen > self.ttl]:
            del self._seats[token]

    def _shrink(self, keep: str) -> None:
        sizes = {t: s.size() for t, s in self._seats.items()}
        total = sum(sizes.values())
        for token in sorted(self._seats, key=lambda t: self._seats[t].last_seen):
            if total <= self.max_bytes:
                break
            if token != keep:
                total -= sizes[token]
                del self._seats[token]


@st.cache_resource(show_spinner=False)
def seat_store() -> SeatStore:
    """One store for the whole server."""
    hours = _env_number("MINILLM_SEAT_HOURS", 3.0)
    megabytes = _env_number("MINILLM_SEATS_MB", 1024.0)
    return SeatStore(hours * 3600, megabytes * 1e6)


def _set_cookie(token: str) -> None:
    """Ask the browser to keep `token` (made by the server: no user text goes in the script)."""
    assert TOKEN_FORMAT.match(token)
    max_age = int(seat_store().ttl)
    st.html(f"<script>document.cookie = '{COOKIE}={token}; path=/; max-age={max_age}; "
            "SameSite=Strict';</script>", unsafe_allow_javascript=True)


def browser_token() -> str | None:
    """The token this browser sent with its cookies when the session began (or None)."""
    token = st.context.cookies.get(COOKIE)
    return token if isinstance(token, str) else None


def token_for(store: SeatStore, token: str | None, known_elsewhere=None) -> tuple[str, bool]:
    """The token a new session goes on with, and whether the browser needs it as a new cookie.

    The browser's own token when this server has its seat, or when `known_elsewhere(token)`
    says the token is someone's on the shared class board (its replica died and nginx sent it
    here: the model is gone with that replica, but the student keeps their place and
    nickname on the board). Otherwise, a malformed, expired or forged token, a new one.
    """
    if store.get(token) is not None:
        return token, False
    if (isinstance(token, str) and TOKEN_FORMAT.match(token) and known_elsewhere is not None
            and known_elsewhere(token)):
        return token, False
    return store.new_token(), True


def restore(known_elsewhere=None) -> Seat | None:
    """At the start of every run (app.py): give this session its token, and on the first run
    of a session whose browser already has a seat, its model and past runs back.
    `known_elsewhere`: see `token_for` (app.py asks the class board).

    Returns the restored seat on that first run (so the page can say "welcome back"), else None.
    """
    if TOKEN_KEY in st.session_state:
        return None
    store = seat_store()
    token, new = token_for(store, browser_token(), known_elsewhere)
    seat = store.get(token)
    if new:
        _set_cookie(token)
    st.session_state[TOKEN_KEY] = token
    if seat is None or seat.experiment is None and not seat.past_runs:
        return None
    st.session_state.setdefault("experiment", seat.experiment)
    st.session_state.setdefault("past_runs", seat.past_runs)
    return seat


def keep(experiment, past_runs: list) -> None:
    """Called by ui.model_state whenever the session's model changes."""
    token = st.session_state.get(TOKEN_KEY)
    if token:
        seat_store().keep(token, experiment, past_runs)
