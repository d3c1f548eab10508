"""The lesson "Does it write a new line?" in a real browser: generated stories, two layers,
every position with the causal mask, trained live to the done marker; then Generate (the
batch judged sentence by sentence) and Attention (layer 2 picked), at 1280x800 and 390x844.

The settings are set through the widgets, as a student sets them (the corpus and the batch
size come in the link, which is also how a teacher hands the lesson out).
"""

import re

import pytest

from conftest import SETTLE_MS

pytestmark = pytest.mark.browser

DRAWN = 30_000  # ms for a rerun to show its result
TRAINED = 240_000  # ms for the run: 300 steps of a 2-layer model and its held-out checks
PHONE = {"width": 390, "height": 844}
LESSON = "train?train_corpus=Stories+%28generated%29&train_batch=64"


def expect():
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def screenshots(app, name: str) -> None:
    """The page at the projector's size, then at a phone's."""
    app.screenshot(name)
    viewport = app.page.viewport_size
    app.page.set_viewport_size(PHONE)
    app.page.wait_for_timeout(SETTLE_MS)
    try:
        app.assert_no_exception()
        app.screenshot(f"{name}-phone")
    finally:
        app.page.set_viewport_size(viewport)


def in_settings(app, selector: str):
    """A widget inside Train's folded settings, unfolding them when a rerun folded them."""
    target = app.page.locator(selector).first
    if not target.is_visible():
        app.page.get_by_text("Settings for the next run").click()
    target.wait_for(timeout=DRAWN)
    return target


def test_stories_with_two_layers_train_then_generate_and_attention(browser_page):
    app, page = browser_page, browser_page.page
    app.goto(LESSON)
    app.assert_no_exception()

    in_settings(app, ".st-key-train_layers input[type='range']").focus()
    page.keyboard.press("ArrowRight")  # 1 -> 2 layers
    page.wait_for_url(re.compile(r"train_layers=2\b"), timeout=DRAWN)
    app.wait_until_idle()
    in_settings(app, ".st-key-train_loss_on").get_by_text("every position (GPT style)").click()
    page.wait_for_url(re.compile(r"train_loss_on=every"), timeout=DRAWN)
    app.wait_until_idle()
    in_settings(app, ".st-key-train_causal label").click()
    page.wait_for_url(re.compile(r"train_causal=true"), timeout=DRAWN)
    app.wait_until_idle()
    app.assert_no_exception()
    expect()(page.get_by_text(re.compile(r"sentences in [\d,]+ stories, one line each"))).to_be_visible()

    page.locator(".st-key-train_go button").first.click()
    done = page.locator("[data-testid='stAlertContentSuccess']", has_text="Training done:")
    done.wait_for(timeout=TRAINED)
    app.wait_until_idle()
    app.assert_no_exception()
    expect()(page.get_by_text("Held-out bits/char")).to_be_visible()
    expect()(page.get_by_text("Held-out floor bits/char")).to_be_visible()
    expect()(page.get_by_text(re.compile("against the language's floor of"))).to_be_visible()
    assert page.locator("[data-testid='stVegaLiteChart']").count() >= 1
    screenshots(app, "train-stories-done")

    nav = page.locator("[data-testid='stSidebarNav']")
    nav.get_by_text("Generate", exact=True).click()
    page.get_by_role("heading", name=re.compile("Creating or remembering")).wait_for(timeout=60_000)
    app.wait_until_idle()
    app.assert_no_exception()
    expect()(page.get_by_text(re.compile(r"\d+ of \d+ sentences are new and correct"))).to_be_visible()
    screenshots(app, "generate-stories")

    nav.get_by_text("Attention", exact=True).click()
    picker = page.locator(".st-key-attention_layer")
    picker.wait_for(timeout=60_000)
    app.wait_until_idle()
    picker.get_by_text("2", exact=True).click()
    page.get_by_text("Layer 2 of 2.").wait_for(timeout=DRAWN)
    app.wait_until_idle()
    app.assert_no_exception()
    assert page.locator("[data-testid='stVegaLiteChart']").count() >= 4  # 2 heads, average, map
    screenshots(app, "attention-layer-2")
    assert not app.external_requests, "\n".join(app.external_requests)
