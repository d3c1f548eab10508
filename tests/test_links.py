"""ui.links without Streamlit: which link values a widget cannot take, and what the notice says.

Each "invalid" answer below was checked against Streamlit 1.67 itself (an AppTest with the
parameter in ``at.query_params``): Streamlit drops exactly these values, and takes the valid
ones (' 50', '+50', '5e1' and '１００' are numbers to Python's float, and so to Streamlit).
"""

from __future__ import annotations

import doctest

import pytest

import ui.links
import ui.plain_text
from ui.links import LINK_TEXT_MAX, fits_in_link, link_problem

MERGES = dict(default=200, min_value=1, max_value=2_000)
CORPUS = dict(options=["Cats and dogs", "Paste your own text"], default="Cats and dogs")


@pytest.mark.parametrize("module", [ui.links, ui.plain_text])
def test_docstring_examples(module):
    assert doctest.testmod(module).failed == 0


@pytest.mark.parametrize("raw", ["50", " 50", "+50", "5e1", "50.0", "１００", "1", "2000"])
def test_numbers_streamlit_takes(raw):
    assert link_problem("merges", [raw], **MERGES) is None


@pytest.mark.parametrize("raw, why", [
    ("abc", "(a whole number from 1 to 2,000)"),
    ("", "(a whole number from 1 to 2,000)"),
    ("0", "(a whole number from 1 to 2,000)"),
    ("2001", "(a whole number from 1 to 2,000)"),
    ("nan", "(a whole number from 1 to 2,000)"),
    ("inf", "(a whole number from 1 to 2,000)"),
    ("0x10", "(a whole number from 1 to 2,000)"),
    ("1,000", "(a whole number from 1 to 2,000)"),
])
def test_numbers_streamlit_drops(raw, why):
    assert link_problem("merges", [raw], **MERGES) == (
        f"The link asked for merges = '{raw.replace(',', chr(92) + ',')}', which isn't a valid "
        f"choice {why}, so the default (200) is used.")


def test_a_fraction_is_cut_to_a_whole_number_as_streamlit_does():
    assert link_problem("merges", ["50.7"], **MERGES) == (
        "The link asked for merges = '50\\.7', which isn't a whole number, so 50 is used.")


def test_choices():
    assert link_problem("text", ["Cats and dogs"], **CORPUS) is None
    assert link_problem("text", ["cats and dogs"], **CORPUS) == (
        "The link asked for text = 'cats and dogs', which isn't a valid choice (one of: Cats "
        "and dogs, Paste your own text), so the default (Cats and dogs) is used.")
    assert link_problem("text", [""], **CORPUS) is not None
    assert link_problem("sentence", [""], empty_ok=True, **CORPUS) is None  # pills: none picked
    many = [str(i) for i in range(100)]
    assert link_problem("step", ["x"], options=many, default="99") == (
        "The link asked for step = 'x', which isn't a valid choice, so the default (99) is used.")
    assert "(a whole number from 0 to 99)" in link_problem(
        "step", ["x"], options=many, default="99", expected="a whole number from 0 to 99")


def test_switches():
    on_off = {True: "on", False: "off"}.get
    for raw in ("true", "False", "TRUE"):
        assert link_problem("split", [raw], default=True, show=on_off) is None
    assert link_problem("split", ["yes"], default=True, show=on_off) == (
        "The link asked for split = 'yes', which isn't a valid choice (true or false), so the "
        "default (on) is used.")


def test_text():
    assert link_problem("text", ["a" * 300], default="", max_chars=300) is None
    assert link_problem("text", ["a" * 301], default="", max_chars=300) == (
        "The link's text has 301 characters; only the first 300 are used.")
    assert link_problem("text", ["<img src=x onerror=alert(1)>"], default="") is None


def test_a_setting_given_twice():
    assert link_problem("merges", ["10", "20"], **MERGES) == (
        "The link gives merges more than once ('10', '20'), so only one of them is used: check "
        "the setting below.")


def test_a_bad_value_is_quoted_as_plain_text_and_cut():
    problem = link_problem("text", ["**x** <img src=x> :red[y] " * 5], **CORPUS)
    assert "'\\*\\*x\\*\\* \\<img src\\=x\\> \\:red\\[y\\] \\*\\*x\\*\\* \\<img src…'" in problem  # 40 characters
    assert "\n" not in link_problem("text", ["a\nb"], **CORPUS)


def test_what_fits_in_a_link():
    assert fits_in_link("a" * LINK_TEXT_MAX)
    assert not fits_in_link("a" * (LINK_TEXT_MAX + 1))
    assert fits_in_link("東" * (LINK_TEXT_MAX // 9))  # 9 URL characters each: %E6%9D%B1
    assert not fits_in_link("🦙" * (LINK_TEXT_MAX // 12 + 1))  # 12 each
    assert fits_in_link("a b" * 1_000)  # a space is one '+'
