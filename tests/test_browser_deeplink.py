"""A shared link must work as the very first visit to a freshly started server.

Streamlit starts out in its old "pages/ folder" mode until a session has run st.navigation
(streamlit#9992). In that mode Streamlit finds a page by its file name, so every url_path in
app.py is its file's name (words_vs_tokens for pages/words_vs_tokens.py), and the page then
reruns through app.py (`ui.router.ensure_router`). Without either, a first visit shows
"Page not found" or a sidebar listing file names instead of the labs.
"""

from __future__ import annotations

import pytest

from conftest import VIEWPORT, AppPage, running_server

pytestmark = pytest.mark.browser


def test_first_visit_by_deep_link_goes_through_the_router(browser):
    with running_server("streamlit-server-deeplink.log") as base_url:
        context = browser.new_context(viewport=VIEWPORT)
        try:
            app = AppPage(page=context.new_page(), base_url=base_url)
            app.goto("words_vs_tokens")
            page = app.page
            page.wait_for_selector("text=Why don't language models", timeout=60_000)
            app.screenshot("deeplink-words_vs_tokens")
            app.assert_no_exception()
            assert page.get_by_text("Page not found").count() == 0
            nav = page.locator("[data-testid='stSidebarNav']")
            assert nav.get_by_text("Tokens lab").count() == 1  # app.py's sections, not file names
            assert nav.get_by_text("words_vs_tokens").count() == 0
        finally:
            context.close()
