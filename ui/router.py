"""Make sure a page always runs through app.py's router.

On a freshly started server, Streamlit first assumes the old "pages/ folder" kind of
multipage app until some session has run `st.navigation` (streamlit issue #9992). So when the
very first visitor opens a deep link such as /compare (a link a teacher shared), Streamlit
runs pages/compare.py on its own: no app.py, no page setup, and our url paths are unknown
("Page not found"). Each page calls `ensure_router()` first: in that one case it switches the
old mode off and reruns, and the rerun goes through app.py to the same page.
"""

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager


def ensure_router() -> None:
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
