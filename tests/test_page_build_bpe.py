"""AppTest of the Build a BPE page (pages/build_bpe.py): its main controls, end to end."""

from __future__ import annotations

import html
import json
import re

import pytest

from conftest import app_test
from minillm import bpe
from minillm.corpus import CATS_AND_DOGS, PRESETS

PAGE = "pages/build_bpe.py"
CATS = next(name for name, lines in PRESETS.items() if lines == CATS_AND_DOGS)
CATS_TEXT = "\n".join(CATS_AND_DOGS)
CATS_MERGES = 45  # the notebook's six sentences, pre-split: after 45 merges every word is one piece


def run_page():
    at = app_test(PAGE).run()
    assert not at.exception
    return at


def step_slider(at):
    return at.select_slider(key="bpe_step")


def merges_slider(at):
    return next(s for s in at.slider if s.label == "Number of merges")


def chips_html(at) -> str:
    return "".join(element.proto.body for element in at.get("html") if "mll-chips" in element.proto.body)


def html_table(body: str) -> list[dict[str, str]]:
    """The rows of a table made by ui.chips.pieces_table_html, each cell's text unescaped."""
    head = [html.unescape(h) for h in re.findall(r"<th>(.*?)</th>", body)]
    return [dict(zip(head, (html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S))))
            for row in re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>")[1], re.S)]


def merges_rows(at) -> list[dict[str, str]]:
    body = next(e.proto.body for e in at.get("html") if "<th>new piece</th>" in e.proto.body)
    return html_table(body)


@pytest.fixture
def training_calls(monkeypatch):
    """Count the real trainings (the page calls bpe.train_bpe only on a cache miss)."""
    calls = []
    real = bpe.train_bpe

    def counting(text, num_merges, **kw):
        calls.append((len(text), num_merges, kw.get("regex_split")))
        return real(text, num_merges, **kw)

    monkeypatch.setattr(bpe, "train_bpe", counting)
    return calls


def test_default_run_trains_on_the_cats_and_dogs_preset():
    at = run_page()
    assert at.title[0].value == "Build a BPE"
    assert at.subheader[0].value == "How does a tokenizer learn its pieces from text?"
    assert at.radio[0].value == CATS
    trained = at.session_state["trained_bpe"]
    expected = bpe.train_bpe(CATS_TEXT, 200)
    assert trained["result"].merges == expected.merges
    assert len(expected.merges) == CATS_MERGES
    assert trained["merges"] == CATS_MERGES and trained["name"] == CATS
    assert step_slider(at).value == CATS_MERGES
    assert f"Only {CATS_MERGES} merges were possible" in at.info[0].value
    assert len(merges_rows(at)) == CATS_MERGES
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert "layer" in spec


def test_step_slider_steps_through_the_merges_without_retraining(training_calls):
    at = run_page()
    assert len(training_calls) == 1

    step_slider(at).set_value(0).run()
    assert not at.exception
    assert at.session_state["trained_bpe"]["merges"] == 0
    assert len(merges_rows(at)) == 0
    assert any("No merges yet" in m.value for m in at.markdown)
    bytes_only = chips_html(at)

    step_slider(at).set_value(3).run()
    assert not at.exception
    merges = at.session_state["trained_bpe"]["result"].merges
    third = merges[2]
    assert [m.value for m in at.metric] == [
        bpe.readable_piece(third.left_bytes),
        bpe.readable_piece(third.right_bytes),
        bpe.readable_piece(third.new_bytes),
    ]
    assert [row["merge"] for row in merges_rows(at)] == ["3", "2", "1"]  # newest first
    assert chips_html(at) != bytes_only  # the sentence's tokens changed with the step
    assert len(training_calls) == 1  # moving the step slider never retrains

    merges_slider(at).set_value(20).run()
    assert not at.exception
    assert len(training_calls) == 2
    assert step_slider(at).value == 20  # a new training starts at all its merges
    assert step_slider(at).options[-1] == "20"
    step_slider(at).set_value(5).run()
    merges_slider(at).set_value(200).run()  # back to a setting already trained: cached
    assert not at.exception
    assert len(training_calls) == 2
    assert step_slider(at).value == CATS_MERGES


def test_pasted_text_and_awkward_sentence():
    at = run_page()
    at.radio[0].set_value("Paste your own text").run()
    assert not at.exception
    assert at.info  # empty text: a plain message, nothing trained
    pasted = "<img src=x onerror=alert(1)> naïve café 👋🏽\n日本語のテキスト\nthe cat sat"
    at.text_area[0].set_value(pasted).run()
    assert not at.exception
    assert at.session_state["trained_bpe"]["name"] == "your text"
    at.text_input[0].set_value("<img src=x onerror=alert(1)> 👋🏽").run()
    assert not at.exception
    html = chips_html(at)
    assert "&lt;img" in html and "<img" not in html


def test_wordfreq_corpus_and_no_pre_split():
    at = run_page()
    at.radio[0].set_value("Most common English words (wordfreq)").run()
    assert not at.exception
    at.slider(key="bpe_words").set_value(1_000).run()
    assert not at.exception
    trained = at.session_state["trained_bpe"]
    assert trained["name"] == "top 1,000 English words"
    assert len(trained["result"].merges) == 200 and trained["result"].regex_split

    at.toggle[0].set_value(False).run()
    assert not at.exception
    trained = at.session_state["trained_bpe"]
    assert not trained["result"].regex_split
    assert any(b" " in m.new_bytes.strip() for m in trained["result"].merges)  # across words


def test_one_space_symbol_and_whole_pieces_without_the_pre_split():
    """A space is ␣ in the table and on the chips (it was ␣ in one and · in the other); with
    the pre-split off and 2,000 merges, pieces as long as a whole line are shown whole, in the
    table and in the latest merge, never cut to "Picture-per…"."""
    at = run_page()
    rows = merges_rows(at)
    assert any(row["new piece"].startswith("␣") for row in rows)
    chips = re.findall(r'">([^<]*)<span class="mll-id">', chips_html(at))
    assert any("␣" in chip for chip in chips) and not any("·" in chip for chip in chips)
    legend = [c.value for c in at.caption if c.value.startswith("␣ a space")]
    assert len(legend) == 2  # under the chips and under the table
    at.toggle(key="bpe_split").set_value(False).run()
    merges_slider(at).set_value(2_000).run()
    assert not at.exception
    result = at.session_state["trained_bpe"]["result"]
    longest = max((bpe.readable_piece(m.new_bytes) for m in result.merges), key=len)
    assert len(longest) > 30  # a whole sentence of the preset, spaces and all
    assert longest in [row["new piece"] for row in merges_rows(at)]
    assert "overflow-wrap: anywhere" in next(e.proto.body for e in at.get("html") if "mll-table" in e.proto.body)
    latest = bpe.readable_piece(result.merges[-1].new_bytes)
    if len(latest) > 12:  # too long for a metric's box: the three pieces as a wrapped table
        shown = [e.proto.body for e in at.get("html") if "<th>New piece</th>" in e.proto.body]
        assert html_table(shown[0])[0]["New piece"] == latest and not at.metric


def test_the_toggle_label_fits_its_column():
    at = run_page()
    toggle = at.toggle(key="bpe_split")
    assert toggle.label == "Split into words first" and "GPT-4" in toggle.help
