"""The Model lab's shareable links and hostile text, in a real browser.

A teacher's link opens Train with its settings in the widgets (and they are still there after a
visit to Generate); HTML typed as the corpus or the prompt is shown as text: no dialog opens and
no <img src=x> element is created.
"""

import re

import pytest

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"
TRAIN_TIMEOUT_MS = 90_000


def widget(page, key, inner="input"):
    """The input of the widget with this key (Streamlit gives its container the class st-key-KEY)."""
    return page.locator(f".st-key-{key} {inner}").first


def nav(page, url_path):
    page.locator(f"[data-testid='stSidebarNav'] a[href$='/{url_path}']").first.click()


def open_settings(page):
    page.get_by_text(re.compile("Settings for the next run")).first.click()


def test_a_train_link_shows_its_values_and_keeps_them_after_a_visit(browser_page):
    browser_page.goto("train?train_block=8&train_seed=7&train_eos=true&train_d_model=zzz")
    browser_page.assert_no_exception()
    page = browser_page.page
    open_settings(page)
    assert widget(page, "train_block").input_value() == "8"
    assert widget(page, "train_seed").input_value() == "7"
    assert widget(page, "train_eos").is_checked()
    assert page.get_by_text("The link asked for d_model = 'zzz'").is_visible()
    assert "train_block=8" in page.url and "train_d_model" not in page.url

    nav(page, "generate")
    browser_page.wait_until_idle()
    nav(page, "train")
    browser_page.wait_until_idle()
    assert widget(page, "train_block").input_value() == "8"  # persist_state="session" + the URL
    assert widget(page, "train_seed").input_value() == "7"
    browser_page.assert_no_exception()


def test_html_as_corpus_and_prompt_stays_text(browser_page):
    page = browser_page.page
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    browser_page.goto("train?train_corpus=Paste+your+own+sentences")
    open_settings(page)
    box = widget(page, "train_text", "textarea")
    box.fill(f"{XSS} the cat\nthe dog {XSS}")
    box.press("Control+Enter")
    browser_page.wait_until_idle()
    browser_page.assert_no_exception()
    assert page.get_by_text("windows (context → next token)").first.is_visible()

    browser_page.goto("generate")
    page.get_by_role("button", name=re.compile("Train the notebook's model now")).click()
    browser_page.wait_until_idle(TRAIN_TIMEOUT_MS)
    prompt = widget(page, "generate_prompt")
    prompt.fill(f"the cat {XSS}")
    prompt.press("Enter")
    browser_page.wait_until_idle()
    browser_page.assert_no_exception()
    assert page.get_by_text(re.compile("never seen the words")).first.is_visible()
    page.wait_for_timeout(500)
    assert not dialogs, dialogs
    assert page.locator("img[src='x']").count() == 0
    browser_page.screenshot("generate-html-prompt")
