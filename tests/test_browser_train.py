"""The Train page in a real browser: press Train, the live fragment trains to its done marker.

`run_every` only fires in a browser, so this is the test of the timer-driven training loop:
nothing but the fragment's own reruns moves the run from epoch 0 to the end.
"""

import re

import pytest

pytestmark = pytest.mark.browser

DONE_MARKER = "Training done:"
POLL_MS = 50
TRAINING_TIMEOUT_MS = 90_000  # 300 epochs take a few seconds; a busy class server, longer


def test_train_runs_live_to_the_done_marker(browser_page):
    browser_page.goto("train")
    browser_page.assert_no_exception()
    page = browser_page.page
    assert page.get_by_role("heading", name=re.compile("Can a tiny model learn")).is_visible()

    page.get_by_role("button", name=re.compile("Train")).first.click()
    progress = page.get_by_text(re.compile(r"Epoch \d+ of 300"))
    progress.first.wait_for(timeout=TRAINING_TIMEOUT_MS)  # the live run has started

    # The page redraws on its own while it trains: the fragment's timer, not a click.
    done = page.locator("[data-testid='stAlertContentSuccess']", has_text=DONE_MARKER)
    epochs_seen = set()
    for _ in range(TRAINING_TIMEOUT_MS // POLL_MS):
        if done.count():
            break
        text = " ".join(progress.all_inner_texts())
        epochs_seen.update(int(e) for e in re.findall(r"Epoch (\d+) of 300", text))
        page.wait_for_timeout(POLL_MS)
    done.wait_for(timeout=30_000)  # it may be redrawn once more as the run ends
    browser_page.screenshot("train-just-done")  # after polling: a shot takes a second
    # One epoch seen between the start and the end proves a redraw mid-run (a busy machine may
    # show only one of the chunks: the test must not depend on how fast the browser polls).
    assert {e for e in epochs_seen if 0 < e < 300}, epochs_seen
    browser_page.wait_until_idle()
    assert page.get_by_text("Epoch 300 of 300").is_visible()
    learned = re.compile(r"The model has learned 99\.\d% of what can be learned")
    assert page.get_by_text(learned).is_visible()
    browser_page.assert_no_exception()
    browser_page.screenshot("train-done")
    assert not browser_page.external_requests, "\n".join(browser_page.external_requests)
    # The trained model goes with the student: Generate and Attention, reached through the
    # sidebar (same session), use it without training again.
    nav = page.locator("[data-testid='stSidebarNav']")
    nav.get_by_text("Generate", exact=True).click()
    page.get_by_role("heading", name="What the model wrote").wait_for(timeout=60_000)
    browser_page.wait_until_idle()
    browser_page.assert_no_exception()
    assert page.get_by_text("There is no trained model").count() == 0
    assert page.locator("[data-testid='stVegaLiteChart']").count() >= 1  # each step's candidates
    browser_page.screenshot("generate-after-training")
    nav.get_by_text("Attention", exact=True).click()
    page.get_by_role("heading", name=re.compile("which earlier words does it look at")).wait_for(timeout=60_000)
    browser_page.wait_until_idle()
    browser_page.assert_no_exception()
    assert page.get_by_text("There is no trained model").count() == 0
    assert page.locator("[data-testid='stVegaLiteChart']").count() >= 3  # two heads and their average
    browser_page.screenshot("attention-after-training")
