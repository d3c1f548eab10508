"""ui.links without Streamlit: which link values a widget cannot take, what the notice says,
and which value the link is corrected to before the widget sees it (`read_link`).

Each "invalid" answer below was checked against Streamlit 1.67 itself (an AppTest with the
parameter in ``at.query_params``): Streamlit drops exactly these values, and takes the valid
ones (' 50', '+50', '5e1' and '１００' are numbers to Python's float, and so to Streamlit).
What the pages then do with such links is tests/test_link_numbers.py.
"""

from __future__ import annotations

import pytest

from ui.links import LINK_TEXT_MAX, LinkValue, fits_in_link, link_problem, read_link

MERGES = dict(default=200, min_value=1, max_value=2_000)
CORPUS = dict(options=["Cats and dogs", "Paste your own text"], default="Cats and dogs")


@pytest.mark.parametrize("raw", ["50", " 50", "+50", "5e1", "50.0", "１００", "1", "2000", "1_000"])
def test_numbers_streamlit_takes(raw):
    # ...and the link is rewritten in the widget's own spelling: the number, as a whole number
    assert read_link("merges", [raw], **MERGES) == LinkValue(None, str(int(float(raw))))


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
    assert read_link("merges", [raw], **MERGES) == LinkValue(
        f"The link asked for merges = '{raw.replace(',', chr(92) + ',')}', which isn't a valid "
        f"choice {why}, so the default (200) is used.", None)  # None: the link drops it


@pytest.mark.parametrize("raw", [
    "inf", "-inf", "+Infinity", "nan", "-nan", "1e309", "-1e309", "1e400", "9" * 400,
    "1e15", "2000.0001", "0.9999", "-0", "-1",
])
def test_numbers_that_are_not_finite_or_out_of_range_give_the_default(raw):
    # A number input raised OverflowError on 'inf' and '1e309'; a huge number of digits is inf
    # to float. Out of range by any fraction is out of range: 2000.0001 is not rounded to 2000.
    reading = read_link("merges", [raw], **MERGES)
    assert reading.value is None
    assert reading.problem.endswith(
        "which isn't a valid choice (a whole number from 1 to 2,000), so the default (200) is used.")


@pytest.mark.parametrize("raw, used", [
    ("50.7", 51), ("50.5", 51), ("50.49", 50), ("1.2", 1), ("1999.6", 2000), ("2.5", 3), ("3.5", 4),
])
def test_a_fraction_in_range_rounds_to_the_nearest_whole_number(raw, used):
    # halves go up (not Python's round-half-even, which a teacher would not expect: 2.5 -> 2)
    assert read_link("merges", [raw], **MERGES) == LinkValue(
        f"The link asked for merges = '{raw.replace('.', chr(92) + '.')}', which isn't a whole "
        f"number, so the nearest whole number ({used:,}) is used.", str(used))


def test_a_fraction_that_rounds_to_the_default_is_still_named():
    assert read_link("epochs", ["300.4"], default=300, min_value=10, max_value=2000) == LinkValue(
        "The link asked for epochs = '300\\.4', which isn't a whole number, so the nearest "
        "whole number (300) is used.", "300")


TEMPERATURE = dict(default=1.0, min_value=0.1, max_value=3.0, step=0.1)


@pytest.mark.parametrize("raw, used", [("0.55", "0.6"), ("0.25", "0.3"), ("0.14", "0.1"),
                                       ("2.96", "3.0"), ("1.04999", "1.0")])
def test_a_decimal_off_the_slider_steps_goes_to_the_nearest_step(raw, used):
    # worked out in decimal: 0.25 is halfway (in floats, (0.25 - 0.1) / 0.1 is 1.4999...)
    assert read_link("temperature", [raw], **TEMPERATURE) == LinkValue(
        f"The link asked for temperature = '{raw.replace('.', chr(92) + '.')}', which isn't on "
        f"the slider's steps of 0.1, so the nearest step ({float(used):g}) is used.", used)


@pytest.mark.parametrize("raw", ["0.5", "3", "0.1", " 2.0", "5e-1"])
def test_a_decimal_on_a_step_is_taken(raw):
    assert read_link("temperature", [raw], **TEMPERATURE) == LinkValue(None, repr(float(raw)))


@pytest.mark.parametrize("raw", ["inf", "nan", "-inf", "1e309", "1e15", "3.0001", "0.0999", "hot"])
def test_a_decimal_that_is_not_finite_or_out_of_range_gives_the_default(raw):
    assert read_link("temperature", [raw], **TEMPERATURE) == LinkValue(
        f"The link asked for temperature = '{raw.replace('.', chr(92) + '.').replace('-', chr(92) + '-')}', "
        "which isn't a valid choice (a number from 0.1 to 3 in steps of 0.1), so the default (1) "
        "is used.", None)


def test_a_decimal_without_steps_takes_any_number_in_range():
    spec = {**TEMPERATURE, "step": None}
    assert read_link("temperature", ["0.123"], **spec) == LinkValue(None, "0.123")
    assert read_link("temperature", ["inf"], **spec).problem.endswith(
        "(a number from 0.1 to 3), so the default (1) is used.")


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


def test_a_setting_given_twice_is_read_from_its_last_value_as_streamlit_does():
    assert read_link("merges", ["10", "20"], **MERGES) == LinkValue(
        "The link gives merges more than once ('10', '20'), so the last one (20) is used.", "20")
    assert read_link("merges", ["10", "inf"], **MERGES) == LinkValue(
        "The link gives merges more than once ('10', 'inf'); only the last one counts. The link "
        "asked for merges = 'inf', which isn't a valid choice (a whole number from 1 to 2,000), "
        "so the default (200) is used.", None)
    assert read_link("merges", ["inf", "10.6"], **MERGES).value == "11"
    assert read_link("text", ["Cats and dogs", "x"], **CORPUS).value is None
    assert read_link("text", ["x", "Paste your own text"], **CORPUS) == LinkValue(
        "The link gives text more than once ('x', 'Paste your own text'), so the last one "
        "(Paste your own text) is used.", "Paste your own text")
    assert read_link("sentence", ["a", "b" * 301], default="", max_chars=300) == LinkValue(
        "The link gives sentence more than once ('a', '" + "b" * 40 + "…'); only the "
        "last one counts. The link's sentence has 301 characters; only the first 300 are used.",
        "b" * 300)
    many = read_link("merges", [str(i) for i in range(1, 7)], **MERGES).problem
    assert many.startswith("The link gives merges more than once ('1', '2', '3', '4', …)")


def test_what_the_link_keeps_of_choices_switches_and_text():
    assert read_link("text", ["Cats and dogs"], **CORPUS).value == "Cats and dogs"
    assert read_link("text", ["cats and dogs"], **CORPUS).value is None
    assert read_link("split", ["TRUE"], default=True).value == "TRUE"
    assert read_link("split", ["yes"], default=True).value is None
    assert read_link("text", ["a" * 301], default="", max_chars=300).value == "a" * 300


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
