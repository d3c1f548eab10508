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


# The progress line's epoch, and the loss chart's label at the end of the current curve.
EPOCHS_SHOWN_JS = """
() => {
  const line = document.querySelector("[data-testid='stMain']").innerText.match(/Epoch (\\d+) of/);
  const labels = [...document.querySelectorAll("[data-testid='stVegaLiteChart'] svg text")]
    .map(t => t.textContent.match(/^epoch (\\d+)$/)).filter(Boolean).map(m => Number(m[1]));
  return {line: line && Number(line[1]), curve: labels.length ? Math.max(...labels) : null};
}
"""


def test_the_curve_reaches_the_epoch_the_counter_says(browser_page):
    """Paused mid-run, the curve ends at the epoch the line above it names (it once trailed the
    counter by ninety epochs). While it runs, the chart may be a tick behind the line: the
    browser draws the chart after the text; the largest gap seen is printed."""
    browser_page.goto("train?train_epochs=2000")
    page = browser_page.page
    page.get_by_role("button", name=re.compile("Train")).first.click()
    gaps = []
    for _ in range(TRAINING_TIMEOUT_MS // POLL_MS):
        shown = page.evaluate(EPOCHS_SHOWN_JS)
        if shown["line"] and shown["curve"] is not None:
            gaps.append(shown["line"] - shown["curve"])
        if (shown["line"] or 0) >= 200:
            break
        page.wait_for_timeout(POLL_MS)
    page.get_by_role("button", name="Pause").click()
    page.get_by_text("Paused.").wait_for(timeout=30_000)
    browser_page.wait_until_idle()
    page.wait_for_timeout(1_000)  # the chart's last redraw
    shown = page.evaluate(EPOCHS_SHOWN_JS)
    print(f"paused at {shown}; while running the curve trailed the line by at most "
          f"{max(gaps, default=0)} epochs")
    assert 0 < shown["line"] < 2000, shown
    assert shown["curve"] == shown["line"], shown
    browser_page.assert_no_exception()
