"""Each linked setting declared once (`ui.linked`): the one declaration gives the link's check
(notice, value used) and the widget's own range and default, so the two cannot drift apart."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]


def script():
    import streamlit as st

    from ui import linked

    n = linked.Number("t_n", "count", 5, 1, 10)
    lr = linked.Choice("t_lr", "learning rate", 0.001, (0.0001, 0.001, 0.1),
                       format_func=lambda v: f"{v:g}")
    on = linked.Flag("t_on", "switch", True)
    word = linked.Text("t_word", "word", "cat", max_chars=5)
    st.session_state["got"] = (n.slider("Count"), lr.select_slider("Learning rate"),
                               on.toggle("Switch"), word.text_input("Word"))
    st.session_state["keys"] = linked.keys("t_")


def opened(**link):
    at = AppTest.from_function(script)
    for key, value in link.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def test_the_widget_gets_the_declared_range_and_default():
    at = opened()
    slider = at.slider(key="t_n")
    assert (slider.min, slider.max, slider.value) == (1, 10, 5)
    assert at.select_slider(key="t_lr").options == ["0.0001", "0.001", "0.1"]
    assert at.session_state["got"] == (5, 0.001, True, "cat")
    assert at.session_state["keys"] == ("t_n", "t_lr", "t_on", "t_word")
    assert not at.warning and not at.info


@pytest.mark.parametrize("link, notice, got", [
    ({"t_n": "99"}, "count = '99', which isn't a valid choice (a whole number from 1 to 10), "
                    "so the default (5) is used", (5, 0.001, True, "cat")),
    ({"t_n": "7.6"}, "the nearest whole number (8) is used", (8, 0.001, True, "cat")),
    ({"t_lr": "banana"}, "learning rate = 'banana'", (5, 0.001, True, "cat")),
    ({"t_lr": "0.1"}, None, (5, 0.1, True, "cat")),
    ({"t_on": "maybe"}, "so the default (on) is used", (5, 0.001, True, "cat")),
    ({"t_word": "elephant"}, "has 8 characters; only the first 5 are used",
     (5, 0.001, True, "eleph")),
])
def test_a_links_value_is_read_against_the_same_declaration(link, notice, got):
    at = opened(**link)
    shown = " ".join(str(e.value) for e in [*at.warning, *at.info, *at.caption, *at.markdown])
    if notice:
        assert notice.replace("(", "").replace(")", "") in \
            shown.replace("\\", "").replace("(", "").replace(")", ""), shown
    assert at.session_state["got"] == got


MODULES = sorted(str(p.relative_to(ROOT)) for p in [*ROOT.glob("pages/*.py"), *ROOT.glob("ui/*.py")]
                 if p.name not in ("links.py", "linked.py"))


@pytest.mark.parametrize("module", MODULES)
def test_every_linked_setting_is_declared_once(module):
    """No page or ui module writes a linked setting out twice: no hand-made check_link call,
    no hand-written LINK_KEYS tuple (they come from `ui.linked.keys`)."""
    text = (ROOT / module).read_text()
    assert "check_link(" not in text
    assert "LINK_KEYS = (" not in text


@pytest.mark.parametrize("link, notice, state", [
    ({"tok_new_names": "33"}, "on the slider's steps of 5, so the nearest step (35) is used",
     ("tok_new_names", 35)),
    ({"tok_budget": "banana"}, "budget = 'banana'", ("tok_budget", "quick")),
    ({"tok_size": "tiny: 16 numbers per token"}, None, ("tok_size", "tiny")),
    ({"tok_seed": "-3"}, "seed = '-3'", ("tok_seed", 0)),
])
def test_which_tokens_reads_its_links_from_its_declarations(monkeypatch, link, notice, state):
    from conftest import app_test

    monkeypatch.setenv("MINILLM_WORKERS", "0")
    at = app_test("pages/which_tokens.py")
    for key, value in link.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    shown = " ".join(str(e.value) for e in [*at.warning, *at.info])
    if notice:
        assert notice in shown.replace("\\", ""), shown
    if state:
        assert at.session_state[state[0]] == state[1]


def test_a_bad_presentation_link_is_explained_not_ignored():
    """?present=banana: the toggle stays off and the page says why (it used to say nothing), on
    the page itself, not in the sidebar, which a phone shows closed."""
    from conftest import app_test

    at = app_test("app.py")
    at.query_params["present"] = "banana"
    at.run()
    assert not at.exception, at.exception
    notes = " ".join(str(e.value) for e in at.main.info)
    assert "presentation mode = 'banana'" in notes.replace("\\", ""), notes
    assert at.toggle(key="present").value is False
