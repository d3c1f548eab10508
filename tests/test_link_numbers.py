"""A link with an unusable number, on every numeric linked setting of every page.

A student (or a typo) can put anything after ``=``: ``inf``, ``nan``, ``1e309``, a thousand
nines, a fraction, the same setting twice. For each such value the page must open without an
exception, say in a notice which value it uses instead, and use exactly that value: the notice's
value is the widget's value. The address bar must then hold that value (or nothing, for the
default), so reopening the corrected link is clean: a reload used to crash again.

Nothing here knows what a page should answer: the used value is read from the notice and from
the widget, and the two are compared.

Every setting is read through its one declaration (`ui.linked`), so every kind of bad value is
tried on one setting of each widget kind (``full``), and the commonest few on every setting.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable

import pytest
from streamlit.testing.v1.element_tree import Block, Expander

from conftest import app_test, trained_experiment
from minillm.compare import WORD_LIST_SIZES
from minillm.experiment import TrainSettings

TRAIN, GENERATE, ATTENTION = "pages/train.py", "pages/generate.py", "pages/attention.py"
BPE, WVT, CMP = "pages/build_bpe.py", "pages/words_vs_tokens.py", "pages/compare.py"
WORDFREQ = "Most common English words (wordfreq)"

#: Every link notice about a value ends by naming the value used: "so the default (300) is
#: used.", "so the nearest whole number (51) is used." (Markdown: plain() escapes punctuation).
USED = re.compile(r"so the [a-z ]+ \((?P<used>.*)\) is used\.$")


@dataclass(frozen=True)
class Setting:
    page: str
    key: str
    label: str  # what the notice calls it
    widget: str  # the AppTest accessor: "slider", "number_input", "select_slider", "selectbox"
    valid: str  # a usable value that is not the default (for the twice-given cases)
    low: float | None = None  # the range of a number setting (None: a choice among options)
    high: float | None = None
    shown: Callable = "{:,}".format  # how the page writes the widget's value
    link: dict = field(default_factory=dict)  # other settings this one needs on the page
    model: bool = False  # the page needs a trained model in the session
    full: bool = False  # every kind of bad value (else the commonest few)


# Not finite (inf, nan, and 1e309, 1e400, 400 nines: inf to float), huge, just out of range, a
# fraction in range, the setting twice (the last value counts, as in Streamlit).
WHOLE = ["inf", "1e309", "nan", "-inf", "1e400", "1e15", "9" * 400,
         "{high}.0001", "{low}.6", ["{valid}", "inf"], ["inf", "{valid}"], ["1e309", "nan"]]
DECIMAL = ["inf", "1e309", "nan", "-inf", "1e400", "1e15", "{high}001", "0.55",
           ["{valid}", "inf"], ["inf", "{valid}"]]
# A choice's options are matched as text, so fewer kinds (Words vs tokens and Compare are slow
# pages: 5-8 s a run here).
CHOICE = ["inf", "1e309", "1e15", "2.5", ["{valid}", "inf"], ["inf", "{valid}"]]
SHORT = {"whole": ["inf", "1e309", "{low}.6", ["{valid}", "inf"]],
         "decimal": ["nan", "0.55", ["inf", "{valid}"]],
         "choice": ["1e15", ["{valid}", "inf"]]}

SETTINGS = [
    Setting(TRAIN, "train_block", "block size", "slider", "8", 1, 16, full=True),
    Setting(TRAIN, "train_epochs", "epochs", "number_input", "50", 10, 2000, full=True),
    Setting(TRAIN, "train_seed", "seed", "number_input", "7", 0, 1_000_000),
    Setting(TRAIN, "train_d_model", "d_model", "select_slider", "64"),
    Setting(TRAIN, "train_heads", "heads", "selectbox", "4", full=True),
    Setting(TRAIN, "train_lr", "learning rate", "select_slider", "0.01", shown="{:g}".format,
            full=True),
    Setting(GENERATE, "generate_max_new", "max new words", "slider", "7", 1, 50, model=True),
    Setting(GENERATE, "generate_seed", "seed", "number_input", "7", 0, 999_999, model=True),
    Setting(GENERATE, "generate_temperature", "temperature", "slider", "0.5", 0.1, 3.0,
            shown="{:g}".format, model=True, full=True),
    Setting(GENERATE, "generate_top_k", "top-k", "select_slider", "5", shown=str, model=True),
    Setting(ATTENTION, "attention_epoch", "epoch", "select_slider", "0", model=True),
    Setting(BPE, "bpe_merges", "merges", "slider", "50", 1, 2_000),
    Setting(BPE, "bpe_words", "how many words", "slider", "2000", 1_000, 20_000,
            link={"bpe_corpus": WORDFREQ}),
    Setting(BPE, "bpe_step", "merges applied", "select_slider", "3"),
    Setting(WVT, "wvt_n", "N", "select_slider", "1,000"),
    Setting(CMP, "cmp_words", "word list", "selectbox",
            f"top {WORD_LIST_SIZES[0]:,} English words (wordfreq)",
            shown="top {:,} English words (wordfreq)".format),
]


def values_for(setting: Setting) -> list:
    decimal = setting.low is not None and not float(setting.low).is_integer()
    kind = "choice" if setting.low is None else "decimal" if decimal else "whole"
    kinds = {"choice": CHOICE, "decimal": DECIMAL, "whole": WHOLE}[kind] if setting.full \
        else SHORT[kind]
    fill = dict(low=setting.low, high=setting.high, valid=setting.valid)
    return [[v.format(**fill) for v in raw] if isinstance(raw, list) else raw.format(**fill)
            for raw in kinds]


CASES = [pytest.param(s, raw, id=f"{s.key}={raw if isinstance(raw, str) else '&'.join(raw)}"[:60])
         for s in SETTINGS for raw in values_for(s)]


@pytest.fixture(scope="module")
def experiment():
    """A small trained model (its replay keeps several epochs for Attention)."""
    return trained_experiment(epochs=30)


def open_link(setting: Setting, params: dict, experiment):
    at = app_test(setting.page)
    if setting.model:
        at.session_state["experiment"] = experiment
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def notices_about(at, label: str) -> list[str]:
    """The page's link notices about the setting called `label`, backslash escapes removed."""
    return [info.value.replace("\\", "") for info in at.info
            if f"for {label} =" in info.value or f"gives {label} more" in info.value]


def widget_value(at, setting: Setting):
    return getattr(at, setting.widget)(key=setting.key).value


@pytest.mark.parametrize("setting, raw", CASES)
def test_an_unusable_number_opens_the_value_the_notice_names(setting, raw, experiment):
    at = open_link(setting, {**setting.link, setting.key: raw}, experiment)
    notices = notices_about(at, setting.label)
    assert len(notices) == 1, (notices, [i.value for i in at.info])
    used = USED.search(notices[0])
    assert used, notices[0]
    value = widget_value(at, setting)
    assert used["used"] == setting.shown(value), (notices[0], value)
    if setting.low is not None:
        assert math.isfinite(value) and setting.low <= value <= setting.high, value
    # The address bar now holds what is used: reopening it is clean, and opens the same value.
    corrected = dict(at.query_params)  # AppTest's copy of the address bar after the run
    again = open_link(setting, corrected, experiment)
    assert notices_about(again, setting.label) == [], corrected
    assert widget_value(again, setting) == value, corrected


# --- Train: its settings sit in a collapsed expander, the link notices must not -----------------


def places(node, inside=()):
    """(element, the blocks it sits in, outermost first) for every element under `node`."""
    for child in getattr(node, "children", {}).values():
        if isinstance(child, Block):
            yield from places(child, (*inside, child))
        else:
            yield child, inside


@pytest.mark.parametrize("link", [{"train_epochs": "inf"}, {"train_corpus": "nope"},
                                  {"train_block": "1.6", "train_lr": "fast"}])
def test_a_bad_train_link_is_explained_outside_the_collapsed_settings(link):
    at = open_link(Setting(TRAIN, "", "", "", ""), link, None)
    expander = next(block for _, blocks in places(at.main) for block in blocks
                    if isinstance(block, Expander))
    assert not expander.proto.expanded  # the settings start folded away
    notices = [(element, blocks) for element, blocks in places(at.main)
               if element.type == "info" and "The link" in element.value]
    assert len(notices) == len(link), [element.value for element, _ in notices]
    for element, blocks in notices:
        assert not any(isinstance(block, Expander) for block in blocks), element.value
    # and above the settings, where a student who opened the link reads first
    order = [element for element, _ in places(at.main)]
    first_setting = next(e for e, blocks in places(at.main) if expander in blocks)
    assert all(order.index(element) < order.index(first_setting) for element, _ in notices)


# --- In a real browser: the address bar, and Back to the address as it was opened ----------------


@pytest.mark.browser
def test_back_to_an_unusable_link_in_the_browser(browser_page):
    """Correcting the link pushes a new address; Back returns to ``?train_epochs=inf``.

    Streamlit then takes the URL's value over the widget's own (history navigation), so the
    value is read again there: without that, Back crashed the page the first visit had fixed.
    The second correction replaces the address instead of pushing one (Streamlit's frontend
    does so during a history navigation), so Back is not a trap either.
    """
    page = browser_page.page
    browser_page.goto("train?train_epochs=inf")
    browser_page.assert_no_exception()
    assert page.get_by_text("The link asked for epochs = 'inf'").is_visible()  # settings folded
    assert "train_epochs" not in page.url, page.url
    # Where Back lands, before the page corrects the address again (in place, this time)
    page.evaluate("window.addEventListener('popstate', () => { window.backTo = location.search })")
    page.go_back()
    browser_page.wait_until_idle()
    assert page.evaluate("window.backTo") == "?train_epochs=inf"
    browser_page.assert_no_exception()
    assert page.get_by_text("The link asked for epochs = 'inf'").is_visible()
    assert "train_epochs" not in page.url, page.url
    page.get_by_text(re.compile("Settings for the next run")).first.click()
    browser_page.wait_until_idle()
    shown = page.locator(".st-key-train_epochs input").first.input_value()
    assert shown == str(TrainSettings().epochs), (shown, page.url)  # the page's default
