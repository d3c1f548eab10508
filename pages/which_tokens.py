"""Which tokens? One corpus, one model size, one budget: a model per tokenizer, each scored on
text it never saw, in bits per character.

Layout and widgets only. The experiment is `minillm.tournament`; it runs as a job shared by
the whole server (`ui.tournament_jobs`): one student starts it, everyone who asks for the same
corpus and settings sees its progress, then its result at once. While it trains, the
`live_progress` fragment polls it on a timer; the page never waits for it.
"""

import streamlit as st

from minillm import tournament as T
from minillm.corpus import CorpusError
from ui import tournament_jobs as jobs
from ui import tournament_widgets as widgets
from ui.links import check_unknown_settings, share_caption
from ui.router import ensure_router

ensure_router()  # a deep link on a fresh server must still go through app.py

POLL_SECONDS = 1.0  # while the experiment trains, its progress is redrawn this often


def ask_run():  # the button's callback: the run starts below, with the settings as they are
    st.session_state.tok_request = "run"


st.title("Which tokens?")
st.header("Which tokens make the best model?")
st.markdown(
    "The same tiny model, the same text, the same number of training steps: **only the "
    "tokens differ**. Whole words, characters, bytes, BPE pieces of three sizes and GPT-4's "
    "own tokenizer each get a model. Then every model is scored on stories it never saw, in "
    "**bits per character**: the one unit in which models that cut text differently compare. "
    "Lower is better."
)
check_unknown_settings("tok_", widgets.LINK_KEYS)
share_caption("Pasted or uploaded text is not in the link.")

corpus_col, settings_col = st.columns([3, 2], gap="large")
with corpus_col:
    try:
        corpus, problem = widgets.choose_corpus(), None
    except (CorpusError, T.TournamentError) as error:
        corpus, problem = None, str(error)
with settings_col:
    settings = widgets.choose_settings()

with st.expander("Who competes, and how they are scored", icon=":material/rule:"):
    st.markdown(
        "- **words**: one id per word of the training text (seen at least twice), plus one "
        "for *unknown word*;\n"
        "- **characters**: one id per character of the training text, plus *unknown*;\n"
        "- **bytes**: the 256 byte values of UTF-8: nothing is ever unknown;\n"
        "- **BPE-50, BPE-200, BPE-1000**: byte-level BPEs trained on the training text with "
        "that many merges (a small text may allow fewer: the table says so);\n"
        "- **cl100k_base**: GPT-4's tokenizer, its ids renumbered to the tokens this text "
        "uses, so its embedding table has a row per token used here, not 100,277 rows.\n\n"
        "Every model pays, for each held-out token, how surprised it was (the end of each line "
        "included), and the total is spread over the same characters for everyone. A word "
        "model cannot write a word it never saw: for each one it pays its bet on *unknown "
        "word* plus spelling the word out letter by letter, so its blind spot shows as a "
        "cost, not as a hole."
    )

if problem:
    st.error(f"This corpus cannot be used: {problem}", icon=":material/error:")
    st.stop()

registry = jobs.registry()
key = jobs.job_key(corpus, settings)
if st.session_state.pop("tok_request", None) == "run":
    too_costly = jobs.cost_problem(corpus, settings)
    if too_costly:
        st.error(too_costly, icon=":material/memory:")
    else:
        try:
            registry.start(key, corpus, settings, owner=jobs.session_id())
        except jobs.Busy as busy:
            st.warning(str(busy), icon=":material/hourglass_top:")
found = registry.find(key)
running = isinstance(found, jobs.Job) and not found.done


@st.fragment(run_every=POLL_SECONDS if running else None)
def live_progress():
    """While the experiment trains: a bar per entrant. Once it is done: the whole page again."""
    job = registry.find(key)
    if not isinstance(job, jobs.Job) or job.done:
        if not full_page_run:
            st.rerun()  # the results, and the timer off
        return
    st.info("Training: one model after another, each in short turns with everyone else's "
            "training on this server. Anyone who asks for the same settings sees this run.",
            icon=":material/model_training:")
    widgets.show_progress(job)


if isinstance(found, T.TournamentResult):
    if widgets.hand_to_train(corpus, settings):  # "Train with BPE-n" was pressed
        st.switch_page("pages/train.py", query_params={})  # Train from its own settings:
        # (a bare switch_page refuses to clear the address while its settings are bound to it)
    widgets.show_results(found, corpus)
    widgets.offer_training(found)
    widgets.take_home(found, corpus)
elif running:
    full_page_run = True  # read by live_progress: False in its own (timer) reruns
    try:
        live_progress()
    finally:  # however the call ends: else its timer's reruns would never show the results
        full_page_run = False
else:
    if isinstance(found, jobs.Job) and found.error:
        st.error(found.error, icon=":material/error:")
    too_costly = jobs.cost_problem(corpus, settings)
    st.button("Run the experiment", key="tok_run", type="primary",
              icon=":material/play_arrow:", on_click=ask_run, disabled=too_costly is not None)
    if too_costly:
        st.caption(too_costly)
    else:
        st.caption(f"About {jobs.estimate(corpus, settings):.0f} s of CPU on this server, "
                   "taking turns with other students' training. Nobody has run these "
                   "settings yet: the result is kept for everyone who asks for them after you.")
    widgets.take_home(None, corpus)  # the experiment's code, to run at home before it has run here
