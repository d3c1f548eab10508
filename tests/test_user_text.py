"""User text is shown as text on every page: never as Markdown, never as HTML.

Streamlit renders as Markdown far more than ``st.markdown``: captions, alerts, headings,
metric labels and values, widget labels, the option labels of pills, radio buttons,
segmented controls and select sliders, expander and tab labels, button labels. A corpus line
such as ``![i](http://203.0.113.9/t.png)`` in any of them makes the browser fetch that
address; ``**bold**`` turns bold. Everything user text may reach must go through
``ui.plain_text.plain`` (Markdown) or ``html.escape`` (``st.html``).

Each page gets a corpus or text full of such pieces, and every string the page hands to a
Markdown-rendering element is searched for them, raw. Each page also has to show the text
somewhere (escaped), so the search is never over a page that left the text out.
"""

from __future__ import annotations

import html
import re

import pytest

from conftest import app_test, page_with
from minillm import inspect
from minillm.experiment import Experiment, TrainSettings
from ui.plain_text import plain

IMAGE = "![i](http://203.0.113.9/t.png)"
BOLD = "**bold**"
IMG = "<img src=x onerror=alert(1)>"
LINK = "[a](javascript:alert(1))"
COLOUR = ":red[hi]"
EMAIL = "ann@example.com"
#: What must never reach a Markdown body unescaped (each is a whole Markdown construct).
RAW = (IMAGE, BOLD, LINK, COLOUR, "](http")
#: A tag opened in a Markdown body: a user's "<" must arrive escaped ("\<").
RAW_TAG = re.compile(r"(?<!\\)<img", re.IGNORECASE)
#: What Streamlit turns into a link even in escaped text: it looks for web and e-mail
#: addresses in the text as read, after the backslash escapes (the patterns GFM uses).
AUTOLINK = re.compile(r"https?://|www\.|[-.\w+]+@[-\w]+(?:\.[-\w]+)+")
ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")  # a backslash escape, as Markdown reads it

LINES = (
    f"{IMAGE} the cat sat on the mat",
    f"{BOLD} the dog sat on the rug",
    f"{IMG} the cat chased the dog",
    f"{LINK} the dog chased the ball",
    f"{COLOUR} $x$ the mouse ate the cheese",
    f"{EMAIL} the bird sang",
)
TEXT = "\n".join(LINES)

#: Widgets whose *option labels* Streamlit renders as Markdown (checked in a browser:
#: selectbox and multiselect options are plain text; these are not).
MARKDOWN_OPTIONS = ("radio", "select_slider", "button_group")


def markdown_strings(at) -> list[str]:
    """Every string of the page that Streamlit renders as Markdown."""
    out = [e.value for kind in ("markdown", "caption", "title", "header", "subheader", "info",
                                "warning", "error", "success", "toast")
           for e in at.get(kind)]
    for metric in at.get("metric"):
        out += [metric.proto.label, metric.proto.body]
    for kind in ("expander", "tab"):
        out += [e.proto.label for e in at.get(kind)]
    for kind in ("button", "download_button", "checkbox", "toggle", "radio", "selectbox",
                 "multiselect", "select_slider", "slider", "text_input", "text_area",
                 "number_input", "button_group", "file_uploader"):
        for widget in at.get(kind):
            out += [widget.proto.label, getattr(widget.proto, "help", "")]
            if kind in MARKDOWN_OPTIONS:
                out += list(widget.options)
    return out


def html_bodies(at) -> list[str]:
    return [element.proto.body for element in at.get("html")]


def assert_text_stays_text(at) -> None:
    assert not at.exception, at.exception
    for body in markdown_strings(at):
        for raw in RAW:
            assert raw not in body, f"{raw!r} reached a Markdown body unescaped: {body[:300]!r}"
        assert not RAW_TAG.search(body), f"a tag reached a Markdown body unescaped: {body[:300]!r}"
        link = AUTOLINK.search(ESCAPED.sub(r"\1", body))
        assert not link, f"{link.group()!r} would become a link: {body[:300]!r}"
    for body in html_bodies(at):
        assert "<img" not in body and "<a " not in body, body[:300]
    assert not any(m.proto.allow_html for m in at.get("markdown"))


def shown_somewhere(at, text: str) -> bool:
    """`text` is on the page as text: escaped in Markdown or HTML, or in a plain-text element."""
    plain_elements = [e.value for kind in ("text", "code") for e in at.get(kind)]
    options = [o for kind in ("selectbox", "multiselect") for w in at.get(kind) for o in w.options]
    return (any(plain(text) in body for body in markdown_strings(at))
            or any(html.escape(text) in body for body in html_bodies(at))
            or any(text in body for body in plain_elements + options))


@pytest.fixture(scope="module")
def hostile():
    """A word-level model trained on the lines above: its words are the Markdown pieces."""
    # an uploaded file's name becomes the corpus name, and so part of the model's caption
    experiment = Experiment(TrainSettings(lines=LINES, corpus_name=f"{IMAGE}.txt", epochs=60))
    experiment.trainer.run()
    return experiment


def test_generate_shows_corpus_words_as_text_in_its_prompt_pills(hostile):
    at = page_with("pages/generate.py", hostile)
    suggestions = inspect.prompt_suggestions(hostile.dataset)
    assert IMAGE + " the" in suggestions and BOLD + " the" in suggestions  # the hostile pills
    (pills,) = at.get("button_group")
    assert pills.options == [plain(s) for s in suggestions]
    assert any(plain(IMAGE) in caption.value for caption in at.caption)  # the model's name
    assert_text_stays_text(at)
    pills.set_value(IMAGE + " the").run()  # a pill still fills in the text itself
    assert at.text_input(key="generate_prompt").value == IMAGE + " the"
    assert_text_stays_text(at)
    assert html.escape(IMAGE) in "".join(html_bodies(at))  # the output shows it, escaped


@pytest.mark.parametrize("prompt", [IMAGE, BOLD, IMG, LINK])
def test_generate_with_a_hostile_prompt(hostile, prompt):
    at = page_with("pages/generate.py", hostile)
    at.text_input(key="generate_prompt").set_value(f"{prompt} the cat").run()
    assert_text_stays_text(at)
    assert shown_somewhere(at, prompt)


def test_attention_shows_corpus_words_as_text(hostile):
    at = page_with("pages/attention.py", hostile)
    assert_text_stays_text(at)
    windows = at.selectbox(key="attention_window")
    assert any(IMAGE in option for option in windows.options)  # a plain-text list: as typed
    at.segmented_control(key="attention_source").set_value("Type a context").run()
    at.text_input(key="attention_text").set_value(f"{BOLD} {IMAGE} zebra{IMG}").run()
    assert_text_stays_text(at)
    assert shown_somewhere(at, "zebra<img")  # named as an unknown word, escaped


def test_compare_shows_a_typed_text_as_text():
    at = app_test("pages/compare.py").run()
    at.text_area(key="cmp_text").set_value(TEXT).run()
    assert_text_stays_text(at)
    assert shown_somewhere(at, "<")  # the chips hold the text, escaped


def test_build_a_bpe_shows_a_pasted_corpus_as_text():
    at = app_test("pages/build_bpe.py").run()
    at.radio(key="bpe_corpus").set_value("Paste your own text").run()
    at.text_area(key="bpe_text").set_value(TEXT * 3).run()
    at.text_input(key="bpe_sentence").set_value(LINES[2]).run()
    assert_text_stays_text(at)
    chips = "".join(html_bodies(at))
    assert "&lt;" in chips and "onerror" in chips  # the sentence's chips, escaped
    for step in (1, 2, 3):  # the metrics show merged pieces of the pasted text
        at.select_slider(key="bpe_step").set_value(step).run()
        assert_text_stays_text(at)


def test_words_vs_tokens_shows_a_typed_text_as_text():
    at = app_test("pages/words_vs_tokens.py").run()
    at.text_area(key="wvt_text").set_value(TEXT).run()
    assert_text_stays_text(at)
    assert shown_somewhere(at, "203.0.113.9")


def test_the_markdown_check_catches_a_raw_body():
    """The check itself: a page that hands user text to a pill unescaped fails it."""
    from streamlit.testing.v1 import AppTest

    def page():
        import streamlit as st
        st.pills("Try", ["![i](http://203.0.113.9/t.png) the"])

    at = AppTest.from_function(page).run()
    with pytest.raises(AssertionError, match="reached a Markdown body unescaped"):
        assert_text_stays_text(at)


def test_train_shows_a_pasted_corpus_as_text():
    from ui.train_widgets import PASTE

    at = app_test("pages/train.py").run()
    at.selectbox(key="train_corpus").set_value(PASTE).run()
    at.text_area(key="train_text").set_value(TEXT).run()
    assert_text_stays_text(at)
    frames = [frame.value.to_string() for frame in at.dataframe]
    assert any(IMAGE in frame for frame in frames)  # the vocabulary table: cells are plain text


@pytest.mark.parametrize("text", [EMAIL, "see https://x.io", "www.x.io", "mailto:" + EMAIL,
                                  IMAGE, "<http://x.io>"])
def test_plain_leaves_no_address_for_streamlit_to_link(text):
    """Escapes alone let an address through: Streamlit finds addresses after reading them."""
    shown = plain(text)
    assert not AUTOLINK.search(ESCAPED.sub(r"\1", shown)), shown
    assert ESCAPED.sub(r"\1", shown).replace("\u2060", "") == text  # and it reads as typed
