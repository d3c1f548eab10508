"""MiniLLM Lab: the router.

Run it with ``streamlit run app.py``. This file only sets up the page, the
navigation and a tiny shared sidebar; each lab lives in its own file under
``pages/`` and the engine lives in ``minillm/``.

Streamlit runs this file on every rerun, then runs the chosen page with
``page.run()``. Widgets created here (in the shared sidebar) keep their state
when the student moves between pages.
"""

import streamlit as st
import torch

from ui import class_mode, seats

st.set_page_config(
    page_title="MiniLLM Lab",
    page_icon="🧪",  # an emoji favicon is drawn locally; a :material/...: one is fetched from Google
    layout="wide",
    initial_sidebar_state="expanded",
)

# Tiny tensors train faster on one thread, and 30 students sharing a 2-core
# class server must not each start a thread per core.
if torch.get_num_threads() != 1:
    torch.set_num_threads(1)

# ---------------------------------------------------------------------------
# Pages. One st.Page(...) line per lab, in lesson order. Register a page only
# once its file exists: st.navigation fails on a missing file.
# Every page has a stable url_path: the browser test, links in worksheets and
# a teacher's bookmarks use it.
# ---------------------------------------------------------------------------

START = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", url_path="home", default=True),
]

TOKENS_LAB = [
    # Add, in this order, when the files land:
    st.Page("pages/words_vs_tokens.py", title="Words vs tokens", icon=":material/text_fields:", url_path="words_vs_tokens"),
    st.Page("pages/compare.py", title="Compare tokenizers", icon=":material/compare_arrows:", url_path="compare"),
    st.Page("pages/build_bpe.py", title="Build a BPE", icon=":material/construction:", url_path="build_bpe"),
]

MODEL_LAB = [
    # Add, in this order, when the files land:
    st.Page("pages/train.py", title="Train", icon=":material/model_training:", url_path="train"),
    st.Page("pages/generate.py", title="Generate", icon=":material/edit_note:", url_path="generate"),
    st.Page("pages/attention.py", title="Attention", icon=":material/visibility:", url_path="attention"),
    st.Page("pages/which_tokens.py", title="Which tokens?", icon=":material/emoji_events:", url_path="which_tokens"),
    st.Page("pages/class_board.py", title="Class board", icon=":material/leaderboard:", url_path="class_board"),
]

SECTIONS = {"Start": START, "Tokens lab": TOKENS_LAB, "Model lab": MODEL_LAB}

# An empty section would show a bare header in the sidebar: leave it out.
page = st.navigation({name: pages for name, pages in SECTIONS.items() if pages})

# A reload (or a dropped connection) starts a new session: give it back this browser's model.
if seats.restore() is not None:
    st.toast("Welcome back: your model and your earlier runs are here again.",
             icon=":material/restore:")

# Shared sidebar footer: kept tiny so the labs own the sidebar.
st.sidebar.caption("Runs offline · your model stays on this server for this browser for a few "
                   "hours; a shared link never carries it")

class_mode.before_page(page.url_path)  # ?class=, the class box, teacher panel, lesson links
page.run()
