"""ui.train_run: the Train page's run state, every request from every state (no Streamlit run)."""

import pytest

from ui.train_run import REQUESTS, RunState, redraw_whole_page

STATES = [RunState(paused, pending) for paused in (False, True) for pending in (False, True)]


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("request_, paused, pending", [
    ("train", False, False),   # a new run runs
    ("reset", False, False),
    ("step", True, True),      # one chunk, then paused
    (None, None, None),        # no click: nothing changes
])
def test_each_request_from_each_state(state, request_, paused, pending):
    after = state.after(request_)
    if request_ is None:
        assert after == state
    else:
        assert (after.paused, after.step_pending) == (paused, pending)


@pytest.mark.parametrize("state", STATES)
def test_pause_toggles_and_drops_a_pending_step(state):
    assert state.after("pause") == RunState(paused=not state.paused, step_pending=False)


def test_a_step_trains_one_chunk_and_then_the_run_stays_paused():
    state = RunState().after("step")
    assert state.trains(done=False)
    after = state.chunk_trained()
    assert after == RunState(paused=True) and not after.trains(done=False)
    assert redraw_whole_page(state, trained=True, done=False, page_ticking=True)
    # no slot came free: nothing trained, the Step is still pending, no redraw yet
    assert not redraw_whole_page(state, trained=False, done=False, page_ticking=True)


def test_a_finished_run_redraws_the_page_only_while_it_shows_a_running_run():
    assert redraw_whole_page(RunState(), trained=True, done=True, page_ticking=True)
    assert not redraw_whole_page(RunState(), trained=False, done=True, page_ticking=False)
    assert not RunState().trains(done=True)


def test_an_unknown_request_is_refused():
    with pytest.raises(ValueError):
        RunState().after("jump")
    assert set(REQUESTS) == {"train", "pause", "step", "reset"}


def _page_marking_its_fragment_call():
    import streamlit as st

    from ui import train_run

    seen = st.session_state.setdefault("seen", [])
    with train_run.whole_page():
        seen.append(train_run.full_page_run())
        how = st.session_state.get("end")
        if how == "rerun" and len(seen) == 1:
            st.rerun()
        if how == "error":
            raise RuntimeError("the page broke mid-call")
    seen.append(train_run.full_page_run())


@pytest.mark.parametrize("end", [None, "rerun", "error"])
def test_the_page_run_mark_comes_off_however_the_call_ends(end):
    """Left on after an st.rerun or an exception, every later tick of Train's fragment took
    itself for a page run and never waited for a training slot: in a busy class such a run
    can starve at its last chunks."""
    from streamlit.testing.v1 import AppTest

    from ui.train_run import FULL_PAGE_RUN

    at = AppTest.from_function(_page_marking_its_fragment_call)
    at.session_state["end"] = end
    at.run()
    assert at.session_state[FULL_PAGE_RUN] is False
    assert True in at.session_state["seen"]  # it was on during the call
