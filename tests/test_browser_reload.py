"""A reload keeps the student's model: the browser's seat cookie brings it back, and only to
that browser (another browser, or a copied link, gets no model)."""

import re

import pytest

from conftest import VIEWPORT, AppPage

pytestmark = pytest.mark.browser

NO_MODEL = "There is no trained model"


def test_a_reload_on_generate_keeps_the_model_and_no_one_else_gets_it(browser, browser_page):
    browser_page.goto("generate")
    page = browser_page.page
    page.get_by_role("button", name=re.compile("Train the notebook's model now")).click()
    page.get_by_role("heading", name="What the model wrote").wait_for(timeout=90_000)
    browser_page.wait_until_idle()
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert "minillm_seat" in cookies and cookies["minillm_seat"]["value"] not in page.url

    page.reload()  # F5: a new Streamlit session
    browser_page.wait_until_idle()
    page.get_by_role("heading", name="What the model wrote").wait_for(timeout=60_000)
    assert page.get_by_text(NO_MODEL).count() == 0
    browser_page.assert_no_exception()
    browser_page.screenshot("generate-after-reload")

    other_context = browser.new_context(viewport=VIEWPORT)  # another student opens the link
    try:
        other = AppPage(page=other_context.new_page(), base_url=browser_page.base_url)
        other.page.goto(page.url)
        other.wait_until_idle()
        other.page.get_by_text(NO_MODEL).wait_for(timeout=60_000)
        other.assert_no_exception()
    finally:
        other_context.close()
