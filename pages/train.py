"""Train: a tiny transformer learns to predict the next word, live, one chunk at a time.

Layout and widgets only. The run is a `minillm.experiment.Experiment` that `ui.model_state`
keeps in session state (Generate and Attention read it); corpus widget, dataset preview and
chart come from `ui.train_widgets`. Training happens only inside the `live_run` fragment, one
bounded chunk per fragment run: on a timer (`run_every`) while a run is active, or per Step.
"""

import math
import time
from functools import partial

import streamlit as st

from minillm import notebook
from minillm.budget import budget_problem, run_cost
from ui import model_state, train_run
from ui.charts import draw
from ui.router import ensure_router
from ui.notebook_button import notebook_button
from ui.save_load import save_load_section
from ui.links import check_unknown_settings, share_caption
from ui.train_settings import LINK_KEYS, next_run
from ui.train_widgets import chart_spec, preview, progress_text, show_summary

ensure_router()  # a deep link on a fresh server must still go through app.py

TICK_SECONDS = 0.3  # while a run is active the fragment reruns this often, one chunk each
STALE_TICK_SECONDS = 1.0  # a tick after the timer was turned off waits this long (see live_run)
WAITING = ("Waiting for a free slot: other students are training right now. This run goes on by "
           "itself in a moment.")


st.title("Train")
st.header("Can a tiny model learn to predict the next word? How low can its mistakes go?")
st.markdown(
    "The model reads a few words (the **context**) and bets on the next one. Its **loss** says "
    "how surprised it was by the real next word: high when it guesses blindly, low when it "
    "knows. Press **Train** and watch the loss fall toward the best any model can do here."
)

model_state.warm_up()
check_unknown_settings("train_", LINK_KEYS)
share_caption("The corpus is in the link only as a preset (generated stories with their "
              "knobs): pasted or uploaded text is not.")
trained_bpe = st.session_state.get("trained_bpe")
chosen = next_run(trained_bpe)
problem, tokenizer = chosen.problem, chosen.tokenizer
block_size, eos, loss_on = (chosen.options[k] for k in ("block_size", "eos", "loss_on"))

bpe = trained_bpe["result"].encoding(trained_bpe["merges"]) if tokenizer == "bpe" else None
settings = data = None
if problem is None:
    try:  # e.g. one word per line: no (context -> next) pair at all
        data, floor, vocab, windows, ambiguous = preview(
            chosen.lines, tokenizer, block_size, eos, loss_on, bpe, chosen.options["valid_share"])
    except ValueError as error:
        st.error(f"This corpus cannot be trained on: {error}.", icon=":material/error:")
if data is not None:
    settings = chosen.settings()
    too_big = budget_problem(run_cost(settings, len(data), data.vocab_size), settings, len(data),
                             data.vocab_size, model_state.budgets())
    if too_big:  # refused before anything is built: the class's server stays free
        st.error(too_big, icon=":material/memory:")
        settings = None
if settings is not None:
    longest = max(len(sentence) for sentence in data.sentences)
    if block_size > longest - 1:
        st.info(f"The longest sentence has {longest} tokens, so no context is longer than "
                f"{longest - 1}: the other {block_size - longest + 1} position(s) of every window "
                "are just PAD.", icon=":material/info:")

if problem:
    st.caption(f"Train is off until the corpus in the settings above is fixed: {problem}")
# A click only leaves a request (its callback runs before this script): carried out here,
# with the settings as they are now (ui.train_run).
request = train_run.take_request()
exp = model_state.current_experiment()
if (request == "train" or request == "step" and exp is None) and settings is not None:
    try:
        exp = model_state.start_experiment(settings, bpe, chosen.line_nats, chosen.story)
    except ValueError as error:  # e.g. over the budget: the old model stays
        st.error(str(error), icon=":material/error:")
        request = None
if request == "reset":
    model_state.reset()
    exp = None
state = train_run.load().after(request)
train_run.save(state)
page_chunk = False  # read by live_run
if request == "train" and exp is not None:
    # The click's first chunk, before the buttons and the timer are drawn: a run that ends in
    # it (in a busy class one chunk is a whole default run) is drawn done at once, without a
    # second page run to turn the timer off. With no slot free the click waits a little for
    # its turn, saying so: each timer rerun instead would cost the busy server a redraw.
    page_chunk = model_state.train_chunk(exp, wait=0)
    if not page_chunk:
        waiting = st.empty()
        waiting.info(WAITING, icon=":material/hourglass_top:")
        page_chunk = model_state.train_chunk(exp, wait=model_state.CLICK_SLOT_WAIT_SECONDS)
        waiting.empty()
paused = state.paused
done = exp is not None and exp.trainer.done
train_col, pause_col, step_col, reset_col = st.columns(4)
train_col.button("Train", key="train_go", type="primary", icon=":material/play_arrow:",
                 width="stretch", disabled=settings is None, help="A new run, these settings",
                 on_click=train_run.ask, args=("train",))
pause_col.button("Resume" if paused else "Pause", key="train_pause", width="stretch",
                 icon=":material/resume:" if paused else ":material/pause:",
                 disabled=exp is None or done, on_click=train_run.ask, args=("pause",))
step_col.button("Step", key="train_step", icon=":material/skip_next:", width="stretch",
                disabled=done or (exp is None and settings is None), help="Train one chunk",
                on_click=train_run.ask, args=("step",))
reset_col.button("Reset", key="train_reset", icon=":material/restart_alt:", width="stretch",
                 disabled=exp is None, help="Drop the model (its curve stays as a faint line)",
                 on_click=train_run.ask, args=("reset",))

if exp is not None and settings is not None and (settings != exp.settings or bpe is not exp.bpe):
    st.info("Settings changed — press Train to start a new run with them. Until then the model "
            "you trained stays (here, on Generate and on Attention).", icon=":material/tune:")

ticking = exp is not None and state.trains(done)


@st.fragment(run_every=TICK_SECONDS if ticking else None)
def live_run():
    """One chunk of training (when the run is active), then progress and the loss curve."""
    exp = model_state.current_experiment()
    if exp is None:
        st.info("No model yet: press **Train**, or **Step** to train one chunk at a time.")
        return
    trainer, before, trained = exp.trainer, train_run.load(), False
    if not ticking and not train_run.full_page_run():
        # A tick of a timer the page already turned off: the browser has not heard yet (on a
        # busy server the messages that stop it are late). Wait before redrawing: its ticks
        # merge into one meanwhile, and the server's time goes to what browsers wait for.
        time.sleep(STALE_TICK_SECONDS)
    if before.trains(trainer.done) and not (train_run.full_page_run() and page_chunk):
        # A full page run does not wait for a slot; the fragment's own runs sleep until one
        # comes free. (The page trained this run's chunk already when its click did.)
        trained = model_state.train_chunk(exp, wait=0 if train_run.full_page_run() else None)
        if trained:
            train_run.save(before.chunk_trained())
        else:
            st.info(WAITING, icon=":material/hourglass_top:")
    if train_run.redraw_whole_page(before, trained, trainer.done, ticking):
        # Buttons and timer as the run is now: paused after a Step, or done. (Drawn first,
        # the chunk's result would show a moment sooner, but a click on another page in that
        # moment is lost to this rerun: the load test's students stayed on Train.)
        st.rerun()
    # One copy of the losses for the line and the curve: both say the same epoch, even if
    # another tab of this browser trains the same run meanwhile. (Drawing the line into a
    # placeholder after the chart made the bar blink empty on every tick.)
    history = list(trainer.history)
    st.progress(len(history) / trainer.epochs, text=progress_text(exp, history))
    draw(chart_spec(exp, history))
    if trainer.done:
        # Drawn by the fragment itself, so the result shows with the last chunk's redraw even
        # when the full redraw above comes late (in load tests a starved browser sometimes
        # never showed it: 1-6 of 30 sessions stayed at "Epoch 300 of 300").
        show_summary(exp)


with train_run.whole_page():  # read by live_run: not in its own (timer or Step) reruns
    live_run()

if exp is not None and paused and not done:
    st.caption("Paused. **Resume**, or **Step** one chunk at a time.")

save_load_section()
if exp is not None:  # the run shown: its settings, the epochs it trained, its numbers
    notebook_button("train", partial(notebook.train_notebook, exp.settings, bpe=exp.bpe,
                                     trained_epochs=exp.trainer.epoch, figures=exp.summary()))
else:  # no run yet: the next run's settings, and the floor shown below
    notebook_button("train", settings and partial(notebook.train_notebook, settings, bpe=bpe, figures={
        "floor": floor, "windows": len(data), "vocab_size": data.vocab_size}))

st.subheader("The data the next run learns from")
if data is None:
    st.caption("Fix the corpus above to see its data.")
else:
    held = len(chosen.lines) - len(data.sentences)
    st.markdown(f"{len(data):,} windows (context → next token) from {len(data.sentences):,} "
                f"lines{f' ({held:,} more held out)' if held else ''}, a vocabulary of "
                f"{data.vocab_size} ids (PAD{' and EOS' if eos else ''} included). "
                f"ln|V| = {math.log(data.vocab_size):.3f}; loss floor = {floor:.4f}.")
    vocab_tab, windows_tab, ambiguous_tab = st.tabs(  # short labels: all three fit a phone
        ["Vocabulary", "Windows", "Why the floor > 0"])
    vocab_tab.dataframe(vocab, hide_index=True, height=300)
    windows_tab.caption("Each window: a context and the token that comes next."
                        + (f" The first {len(windows):,} of {len(data):,} windows."
                           if len(data) > len(windows) else ""))
    windows_tab.dataframe(windows, hide_index=True, height=300)
    ambiguous_tab.caption("Contexts followed by more than one next token in the data: here even "
                          "a perfect model can only give odds. Their entropy makes up the floor.")
    ambiguous_tab.dataframe(ambiguous, hide_index=True, height=300, column_config={
        "entropy (nats)": st.column_config.NumberColumn(format="%.3f")})
