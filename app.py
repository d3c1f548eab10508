"""MiniLLM Lab: the router.

Run it with ``streamlit run app.py``. This file only sets up the page, the
navigation and a tiny shared sidebar; each lab lives in its own file under
``pages/`` and the engine lives in ``minillm/``. The pages themselves are listed
once, in ``ui/pages_list.py``.

Streamlit runs this file on every rerun, then runs the chosen page with
``page.run()``. Widgets created here (in the shared sidebar) keep their state
when the student moves between pages.
"""

import streamlit as st
import torch

from minillm import workers
from ui import class_mode, presentation, seats
from ui.pages_list import HOME, HOME_ALIAS, sections

st.set_page_config(
    page_title="MiniLLM Lab",
    page_icon="🧪",  # an emoji favicon is drawn locally; a :material/...: one is fetched from Google
    layout="wide",
    # "auto": open on a wide screen, closed on a phone, where it would cover most of the page.
    initial_sidebar_state="auto",
)

# Tiny tensors train faster on one thread, and 30 students sharing a 2-core
# class server must not each start a thread per core.
if torch.get_num_threads() != 1:
    torch.set_num_threads(1)
# The server and its training workers share the cores: as batch work, none of them preempts
# another at every wake-up (see minillm.workers.batch_scheduling; MINILLM_BATCH_SCHEDULING=0: off).
workers.batch_scheduling()


def _page(info):
    # Home is the default page, which Streamlit serves at the root (url_path "").
    return st.Page(info.file, title=info.title, icon=info.icon, url_path=info.url_path,
                   default=info is HOME)


def _home_alias():
    """/home: Streamlit serves the default page only at the root, so send the browser there."""
    st.switch_page(HOME.file, query_params=st.query_params.to_dict())


NAVIGATION = {section: [_page(info) for info in pages] for section, pages in sections()}
NAVIGATION["Start"].append(st.Page(_home_alias, title=HOME.title, url_path=HOME_ALIAS,
                                   visibility="hidden"))
page = st.navigation(NAVIGATION)

# A reload (or a dropped connection) starts a new session: give it back this browser's model.
if seats.restore(known_elsewhere=class_mode.known_browser) is not None:
    st.toast("Welcome back: your model and your earlier runs are here again.",
             icon=":material/restore:")

presentation.sidebar_toggle()  # large text and chart labels for a projector, kept in the link

# Shared sidebar footer: kept tiny so the labs own the sidebar.
st.sidebar.caption("Runs offline · your model stays on this server for this browser for a few "
                   "hours; a shared link never carries it")

class_mode.before_page(page.url_path)  # ?class=, the class box, teacher panel, lesson links
page.run()
