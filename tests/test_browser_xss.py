"""The Tokens lab in a real browser: typed HTML stays text, and a shared link opens as it was.

- ``<img src=x onerror=alert(1)>`` typed into Compare's text box, and pasted as Build a BPE's
  corpus (and its sentence): no dialog opens, no ``img[src=x]`` element exists in the page or
  any frame, no ``<script>`` holds the text, and the chips show it as characters.
- Markdown in a corpus pasted on Train (``![i](http://203.0.113.9/t.png)``, ``**bold**``):
  Generate offers the corpus's openings as prompt pills, and a pill's label is Markdown.
  The browser must not fetch that address, and the pills show the characters as typed.
- A teacher's settings travel in the address bar: set up a page, copy ``page.url``, open it
  in a new browser context (a new student), see the same settings. A malformed link opens
  with the default and a notice.

Streamlit reports "notRunning" before a long page has finished drawing: values are awaited
with Playwright's ``expect`` (it retries) rather than read once.
"""

from __future__ import annotations

import re
from urllib.parse import quote_plus

import pytest

from conftest import VIEWPORT, AppPage

pytestmark = pytest.mark.browser

IMG = "<img src=x onerror=alert(1)>"
OUTSIDE = "203.0.113.9"  # TEST-NET-3: an address that is never this app's
IMAGE = f"![i](http://{OUTSIDE}/t.png)"
BOLD = "**bold**"
DRAWN = 20_000  # ms to wait for a value to be drawn
TRAINED = 90_000  # ms for a training run to reach its done marker


def expect():
    from playwright.sync_api import expect as playwright_expect
    return playwright_expect


def record_dialogs(app: AppPage) -> list[str]:
    """Every alert/confirm/prompt the page tries to open (dismissed at once)."""
    dialogs: list[str] = []
    app.page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    return dialogs


def assert_nothing_ran(app: AppPage, dialogs: list[str]) -> None:
    page = app.page
    page.wait_for_timeout(1_000)  # an onerror handler fires as soon as its image fails
    assert dialogs == []
    for frame in page.frames:  # st.html and components may use iframes
        assert frame.locator("img[src='x']").count() == 0, frame.url
        scripts = frame.evaluate(
            "() => [...document.scripts].filter(s => s.textContent.includes('alert(1)')).length")
        assert scripts == 0, frame.url
    app.assert_no_exception()


def type_into(app: AppPage, selector: str, text: str) -> None:
    """Fill a text box and commit it the way a student does (Ctrl+Enter), then wait."""
    box = app.page.locator(selector)
    box.fill(text)
    box.press("Control+Enter" if selector.endswith("textarea") else "Enter")
    app.wait_until_idle()


def slider(page, key: str):
    return page.locator(f".st-key-{key} input[type='range']")


OPPOSITE = {"ArrowLeft": "ArrowRight", "ArrowRight": "ArrowLeft"}


def press_to(app: AppPage, key: str, press: str, value: int, linked: bool = True) -> None:
    """Press a key on slider `key` until it, and the link if `linked`, hold `value`.

    One key at a time, each change drawn before the next. A key pressed while the page reruns
    can still be lost on a busy machine (CI once stopped at 198, once at 199): the key is
    pressed again only while the slider has not moved, so a slow redraw never overshoots; a
    slider that moved while its link did not is moved away and back, to send its value again.
    """
    page = app.page
    in_link = re.compile(rf"[?&]{key}={value}\b")
    for _ in range(3):
        if slider(page, key).input_value() != str(value):
            slider(page, key).focus()
            page.keyboard.press(press)
        elif linked and not in_link.search(page.url) and press in OPPOSITE:
            # The slider moved but the server never heard of it (CI once waited 20 s at 199
            # with the slider at 198): move it away and back, so its value is sent again.
            slider(page, key).focus()
            page.keyboard.press(OPPOSITE[press])
            app.wait_until_idle()
            slider(page, key).focus()
            page.keyboard.press(press)
        try:
            expect()(slider(page, key)).to_have_value(str(value), timeout=DRAWN // 4)
            if linked:
                expect()(page).to_have_url(in_link, timeout=DRAWN // 2)
            break
        except AssertionError:
            continue
    else:
        raise AssertionError(f"{press} never took slider {key} to {value}")
    app.wait_until_idle()


def test_html_typed_into_compare_is_shown_as_text(browser_page):
    app = browser_page
    dialogs = record_dialogs(app)
    app.goto("compare")
    type_into(app, ".st-key-cmp_text textarea", f"{IMG} bookkeepers")
    expect()(app.page.locator(".st-key-compare_chips_cl100k_base")).to_contain_text(
        "alert", timeout=DRAWN)
    characters = app.page.locator(".st-key-compare_chips_chars .mll-chip").all_inner_texts()
    assert [chip.split("\n")[0] for chip in characters[:5]] == ["<", "i", "m", "g", "␣"]
    assert_nothing_ran(app, dialogs)
    # the text went into the link, and the link holds it as text
    assert "cmp_text=" + quote_plus(f"{IMG} bookkeepers") in app.page.url


def test_html_pasted_as_a_bpe_corpus_is_shown_as_text(browser_page):
    app = browser_page
    dialogs = record_dialogs(app)
    app.goto("build_bpe")
    app.page.get_by_text("Paste your own text").click()
    app.wait_until_idle()
    type_into(app, ".st-key-bpe_text textarea", f"{IMG} the cat\n{IMG} the dog\n" * 3)
    type_into(app, ".st-key-bpe_sentence input", IMG)
    expect()(app.page.get_by_text("is now offered on the Compare tokenizers page")).to_be_visible(
        timeout=DRAWN)
    expect()(app.page.locator(".st-key-build_bpe_chips")).to_contain_text("onerror", timeout=DRAWN)
    assert_nothing_ran(app, dialogs)
    # the trained BPE, and its pieces, on the Compare page too
    app.page.get_by_role("link", name="Compare tokenizers").click()
    app.wait_until_idle()
    expect()(app.page.get_by_role("heading", name="your BPE: your text")).to_be_visible(
        timeout=DRAWN)
    assert_nothing_ran(app, dialogs)


def test_settings_changed_on_build_a_bpe_open_the_same_in_a_new_browser(browser_page, browser):
    app = browser_page
    page = app.page
    app.goto("build_bpe")
    for merges in (199, 198, 197):  # 200 -> 197
        press_to(app, "bpe_merges", "ArrowLeft", merges)
    page.locator(".st-key-bpe_split label").click()  # split into words: off
    page.wait_for_url(re.compile(r"bpe_split=false"), timeout=DRAWN)
    app.wait_until_idle()
    press_to(app, "bpe_step", "Home", 0, linked=False)  # the default is not in the link
    for step in range(1, 6):
        press_to(app, "bpe_step", "ArrowRight", step)
    type_into(app, ".st-key-bpe_sentence input", "naïve 東京 🦙")
    page.wait_for_url(re.compile(r"bpe_sentence="), timeout=DRAWN)
    shared = page.url

    context = browser.new_context(viewport=VIEWPORT)  # another student, another session
    try:
        student = AppPage(page=context.new_page(), base_url=app.base_url)
        student.page.goto(shared)
        student.wait_until_idle()
        other = student.page
        expect()(slider(other, "bpe_merges")).to_have_value("197", timeout=DRAWN)
        expect()(other.locator(".st-key-bpe_split input")).not_to_be_checked(timeout=DRAWN)
        expect()(slider(other, "bpe_step")).to_have_attribute("aria-valuetext", "5",
                                                              timeout=DRAWN)
        expect()(other.locator(".st-key-bpe_sentence input")).to_have_value("naïve 東京 🦙",
                                                                           timeout=DRAWN)
        expect()(other.get_by_text("Merge 5", exact=False).first).to_be_visible(timeout=DRAWN)
        student.screenshot("shared-link-build_bpe")
        student.assert_no_exception()
    finally:
        context.close()


def test_a_shared_compare_link_opens_with_its_text_and_word_list(browser_page):
    app = browser_page
    text = "bookkeepers 東京 " + IMG
    app.goto(f"compare?cmp_text={quote_plus(text)}"
             f"&cmp_words={quote_plus('top 1,000 English words (wordfreq)')}")
    page = app.page
    expect()(page.locator(".st-key-cmp_text textarea")).to_have_value(text, timeout=DRAWN)
    word_list = page.get_by_role("combobox", name="Word list for the word-level tokenizer")
    expect()(word_list).to_have_value("top 1,000 English words (wordfreq)", timeout=DRAWN)
    expect()(page.get_by_role("heading", name="words (top 1,000)")).to_be_visible(timeout=DRAWN)
    assert page.locator("img[src='x']").count() == 0
    app.screenshot("shared-link-compare")
    app.assert_no_exception()


def test_a_malformed_link_opens_the_default_with_a_notice(browser_page):
    app = browser_page
    dialogs = record_dialogs(app)
    app.goto(f"build_bpe?bpe_merges=abc&bpe_corpus={quote_plus(IMG)}")
    page = app.page
    expect()(page.get_by_text("The link asked for merges = 'abc', which isn't a valid choice"
                              )).to_be_visible(timeout=DRAWN)
    expect()(page.get_by_text(f"The link asked for text to learn from = '{IMG}'")).to_be_visible(
        timeout=DRAWN)
    expect()(slider(page, "bpe_merges")).to_have_value("200", timeout=DRAWN)
    assert "bpe_merges" not in page.url  # Streamlit took the bad value out of the address bar
    app.screenshot("malformed-link-build_bpe")
    assert_nothing_ran(app, dialogs)


def test_markdown_in_a_trained_corpus_is_shown_as_text_on_generate(browser_page):
    app = browser_page
    page = app.page
    dialogs = record_dialogs(app)
    warnings: list[str] = []
    page.on("console", lambda message: message.type == "warning" and warnings.append(message.text))
    app.goto("train")
    settings = page.get_by_text("Settings for the next run")
    settings.click()
    app.wait_until_idle()  # opening the settings reruns the page, which closes a list opened meanwhile
    corpus_box = page.locator(".st-key-train_corpus").get_by_role("combobox")
    corpus_box.wait_for(timeout=DRAWN)
    corpus_box.click()
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    paste = page.get_by_role("option", name="Paste your own sentences")
    try:
        paste.wait_for(timeout=5_000)
    except PlaywrightTimeoutError:  # a rerun still closed it: open it again
        corpus_box.click()
    paste.click()
    app.wait_until_idle()
    text_box = page.locator(".st-key-train_text textarea")
    if not text_box.is_visible():  # the rerun may have folded the settings away again
        settings.click()
    text_box.wait_for(timeout=DRAWN)
    corpus = f"{IMAGE} the cat sat on the mat\n{BOLD} the dog sat on the rug\n{IMG} the cat ran"
    type_into(app, ".st-key-train_text textarea", corpus)
    page.locator(".st-key-train_go button").first.click()
    page.locator("[data-testid='stAlertContentSuccess']", has_text="Training done:").wait_for(
        timeout=TRAINED)
    app.wait_until_idle()
    page.locator("[data-testid='stSidebarNav']").get_by_text("Generate", exact=True).click()
    page.get_by_role("heading", name="What the model wrote").wait_for(timeout=DRAWN)
    app.wait_until_idle()
    pills = page.locator(".st-key-generate_pick")
    expect()(pills).to_contain_text("the", timeout=DRAWN)
    page.wait_for_timeout(1_000)  # an image would be requested as soon as it is drawn
    assert [r for r in app.external_requests if OUTSIDE in r] == []
    assert page.locator(f"img[src*='{OUTSIDE}']").count() == 0
    expect()(pills).to_contain_text(f"{BOLD} the", timeout=DRAWN)  # as typed, not bold
    shown = pills.inner_text().replace("\u2060", "")  # ui.plain_text's invisible word joiner
    assert f"{IMAGE} the" in shown and f"{IMG.split()[0]} " in shown, shown  # not an image
    assert pills.locator("img, strong, a").count() == 0
    assert_nothing_ran(app, dialogs)
    # the candidate bars' layers share one sorted axis without a Vega-Lite conflict
    assert page.locator("[data-testid='stVegaLiteChart']").count() >= 1
    assert not [w for w in warnings if "conflicting sort" in w], warnings
    app.screenshot("generate-markdown-corpus")
