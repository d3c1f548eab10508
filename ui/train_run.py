"""The Train page's run state: what a click asked for, and whether the run trains now.

A button's callback only leaves a request (`ask`); the page carries it out on its next run
(`take_request`), with the settings as they are then, even if the router reruns first. Per
session two more things are kept (`load`, `save`):

- paused: the student paused the run (Pause; a Step pauses too, after its one chunk);
- step pending: a Step asked for one chunk that has not trained yet.

`RunState` holds those two and says what follows from them: whether a fragment run trains a
chunk (and so whether the fragment's timer ticks), and `redraw_whole_page` when the page
around the fragment must be drawn again. Pure, so it is tested without Streamlit.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace

import streamlit as st

REQUEST, PAUSED, STEP_PENDING = "train_request", "train_paused", "train_step_pending"
FULL_PAGE_RUN = "train_full_page_run"
REQUESTS = ("train", "pause", "step", "reset")


@dataclass(frozen=True)
class RunState:
    """Paused or not, and whether a Step's chunk is still to train.

    >>> RunState().after("pause")
    RunState(paused=True, step_pending=False)
    >>> RunState(paused=True).after("pause")            # Resume
    RunState(paused=False, step_pending=False)
    >>> RunState().after("step")                        # one chunk, then paused
    RunState(paused=True, step_pending=True)
    >>> RunState(paused=True).after("train")            # a new run starts running
    RunState(paused=False, step_pending=False)
    """

    paused: bool = False
    step_pending: bool = False

    def after(self, request: str | None) -> RunState:
        """The state once `request` (one of `REQUESTS`, or None: no click) is carried out."""
        if request is None:
            return self
        if request not in REQUESTS:
            raise ValueError(f"request must be one of {REQUESTS}, not {request!r}")
        return RunState(paused={"pause": not self.paused, "step": True}.get(request, False),
                        step_pending=request == "step")

    def trains(self, done: bool) -> bool:
        """Whether the next fragment run trains a chunk (so the timer ticks): a run not done,
        running, or paused with a Step's chunk to train.

        >>> RunState(paused=True).trains(done=False), RunState(True, True).trains(done=False)
        (False, True)
        >>> RunState().trains(done=True)
        False
        """
        return not done and (self.step_pending or not self.paused)

    def chunk_trained(self) -> RunState:
        """After a chunk has trained: no Step is pending any more (paused stays as it was)."""
        return replace(self, step_pending=False)


def redraw_whole_page(before: RunState, trained: bool, done: bool, page_ticking: bool) -> bool:
    """After a fragment run: whether the page around it must be drawn again (`st.rerun`).

    - a Step's chunk has trained: the buttons must show a paused run again;
    - the run is over while the page drawn around the fragment still shows it running (its
      timer on, Pause enabled); asked on every tick, not only right after the last chunk.

    >>> redraw_whole_page(RunState(True, True), trained=True, done=False, page_ticking=True)
    True
    >>> redraw_whole_page(RunState(), trained=True, done=False, page_ticking=True)
    False
    >>> redraw_whole_page(RunState(), trained=False, done=True, page_ticking=True)
    True
    >>> redraw_whole_page(RunState(), trained=False, done=True, page_ticking=False)
    False
    """
    return (trained and before.step_pending) or (done and page_ticking)


def ask(action: str) -> None:
    """A button's callback: leave the request for the page's next run."""
    st.session_state[REQUEST] = action


def take_request() -> str | None:
    """The request the last click left, once (None when there is none)."""
    return st.session_state.pop(REQUEST, None)


def load() -> RunState:
    return RunState(paused=st.session_state.get(PAUSED, False),
                    step_pending=st.session_state.get(STEP_PENDING, False))


def save(state: RunState) -> None:
    st.session_state[PAUSED] = state.paused
    st.session_state[STEP_PENDING] = state.step_pending


def full_page_run() -> bool:
    """Whether this script run is the whole page's (not the fragment's own, on its timer or a
    Step): the page marks its call of the fragment with `whole_page`. A full page run does
    not wait for a training slot, as the rest of the page would wait with it."""
    return st.session_state.get(FULL_PAGE_RUN, False)


@contextlib.contextmanager
def whole_page():
    """Around the page's own call of the fragment. The mark is taken off however the call
    ends (an `st.rerun`, an exception, a newer run stopping this one): left on, every later
    tick of the fragment would take itself for a page run and never wait for a slot, and in
    a busy class a run that never waits can starve at its last chunks."""
    st.session_state[FULL_PAGE_RUN] = True
    try:
        yield
    finally:
        st.session_state[FULL_PAGE_RUN] = False
