"""AppTest of the Generate page: no model, a trained model in session state, bad prompts."""

import html as html_module
import json

import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

from conftest import app_test, trained_experiment
from conftest import page_with as conftest_page_with
from minillm.experiment import Experiment, TrainSettings
from minillm.inspect import NOTEBOOK_PROMPTS
from ui.plain_text import plain

PAGE = "pages/generate.py"
TRAIN_NOW = "Train the notebook's model now (about 2 seconds)"


@pytest.fixture(scope="module")
def trained():
    return trained_experiment(epochs=150)


@pytest.fixture(scope="module")
def with_eos():
    return trained_experiment(epochs=150, eos=True)


def page_with(experiment):
    return conftest_page_with(PAGE, experiment)


def output_html(at) -> str:
    (html,) = [h.value for h in at.html if "mll-out" in h.value]
    return html


def output_text(at) -> str:
    """The generated text as a reader sees it (tags dropped, entities left as they are)."""
    import re
    body = output_html(at).split('<div class="mll-out">', 1)[1].split("</div>", 1)[0]
    return re.sub(r"<[^>]+>", "", body)


def candidates(at):
    """The candidate bars' rows: one chart of 3 panels a row, its twin of 1 a row for a phone,
    on the same rows."""
    wide, narrow = at.get("vega_lite_chart")
    specs = [json.loads(chart.proto.spec) for chart in (wide, narrow)]
    assert [spec["facet"]["field"] for spec in specs] == ["panel", "panel"]
    assert [spec["columns"] for spec in specs] == [3, 1]
    rows = [convert_arrow_bytes_to_pandas_df(chart.proto.datasets[0].data.data)
            for chart in (wide, narrow)]
    assert rows[0].equals(rows[1])
    return rows[0]


def messages(at) -> str:
    return "\n".join(e.value for kind in (at.warning, at.info, at.success) for e in kind)


def test_without_a_model_the_page_says_so_and_trains_the_notebooks_one():
    at = app_test(PAGE).run()
    assert not at.exception
    assert at.header[0].value == "What does the model write, and is it creating or just remembering?"
    assert "no trained model in this session" in at.info[0].value
    assert "experiment" not in at.session_state
    assert not at.get("vega_lite_chart") and not at.text_input  # nothing else until trained
    at.button(key="generate_train_now").click().run()
    assert not at.exception
    experiment = at.session_state["experiment"]
    assert experiment.trainer.epoch == 300 and experiment.settings == TrainSettings()
    assert output_text(at).startswith("the cat ")
    assert len(candidates(at)["step"].unique()) == 15


def test_after_a_reset_the_page_says_there_is_no_model():
    at = app_test(PAGE)
    at.session_state["experiment"] = None  # what ui.model_state.reset() leaves behind
    at.run()
    assert not at.exception
    assert "no trained model in this session" in at.info[0].value


def test_the_notebooks_prompts_are_quick_picks(trained):
    at = page_with(trained)
    assert at.pills[0].options == list(NOTEBOOK_PROMPTS)
    assert at.text_input(key="generate_prompt").value == "the cat"
    at.pills[0].set_value("the mailman").run()
    assert not at.exception
    assert at.text_input(key="generate_prompt").value == "the mailman"
    assert output_text(at).startswith("the mailman ")


def test_output_marks_copied_runs_and_says_why_it_stopped(trained):
    at = page_with(trained)
    html = output_html(at)
    assert '<span class="mll-copied">' in html and "copied word for word" in html
    assert "it rambles until the limit" in messages(at)
    assert any("15 words it wrote" in m.value for m in at.markdown)


def test_controls_change_the_output(trained):
    at = page_with(trained)
    first = output_text(at)
    at.run()
    assert output_text(at) == first  # same seed, same text
    at.button[0].click().run()  # "Another sample": next seed
    assert not at.exception and at.number_input(key="generate_seed").value == 43
    at.slider(key="generate_max_new").set_value(4).run()
    assert not at.exception
    assert len(output_text(at).split()) == 2 + 4
    table = candidates(at)
    assert sorted(table["step"].unique()) == [1, 2, 3, 4]
    assert table.groupby("step")["picked"].sum().tolist() == [1, 1, 1, 1]


def test_greedy_always_picks_the_favourite_and_top_k_1_is_greedy(trained):
    at = page_with(trained)
    at.toggle(key="generate_greedy").set_value(True).run()
    assert not at.exception
    assert at.slider(key="generate_temperature").disabled
    greedy_text = output_text(at)
    table = candidates(at)
    assert (table[table["rank"] == 1]["picked"]).all()
    at.toggle(key="generate_greedy").set_value(False).run()
    at.select_slider(key="generate_top_k").set_value(1).run()
    assert not at.exception
    assert output_text(at) == greedy_text
    assert (candidates(at).query("picked")["probability"] == 1.0).all()


def test_with_eos_the_text_ends_by_itself(with_eos):
    at = page_with(with_eos)
    at.toggle(key="generate_greedy").set_value(True).run()
    assert not at.exception
    assert "it ended the text by itself" in at.success[0].value
    assert output_text(at) in with_eos.settings.lines  # greedy writes a corpus sentence
    assert any("are copied word for word from the corpus" in m.value for m in at.markdown)
    assert "EOS" not in output_text(at)


@pytest.mark.parametrize("prompt, expected", [
    ("", "The prompt is empty"),
    ("   ", "The prompt is empty"),
    ("zebra", "The model has never seen the word \\'zebra\\'\\, so it was left out"),
    ("the zebra cat", "The model has never seen the word \\'zebra\\'"),
    ("zebra lion", "Nothing of the prompt is left"),
    ("🐱🐶", "never seen the word \\'🐱🐶\\'"),
    ("<img src=x onerror=alert(1)>", "\\'\\<img\\'"),
    ("the\x00cat\x1b", "invisible control character"),
    ("the cat " * 1250, "A prompt can be at most 200 characters"),
], ids=["empty", "spaces", "unknown", "one-unknown", "all-unknown", "emoji", "html", "control",
        "10000-chars"])
def test_bad_prompts_get_a_message_and_keep_the_model(trained, prompt, expected):
    at = page_with(trained)
    at.text_input(key="generate_prompt").set_value(prompt).run()
    assert not at.exception, at.exception
    assert expected in messages(at)
    assert at.session_state["experiment"] is trained
    for html in at.html:  # the prompt never reaches the page as markup
        assert "<img" not in html.value and "onerror" not in html.value
    at.text_input(key="generate_prompt").set_value("the dog").run()  # and the page recovers
    assert not at.exception and output_text(at).startswith("the dog ")


def test_html_in_a_corpus_is_shown_as_text():
    experiment = Experiment(TrainSettings(lines=("<b>hi</b> <img src=x onerror=alert(1)> there",
                                                 "<b>hi</b> you"), epochs=80))
    experiment.trainer.run()
    at = app_test(PAGE)
    at.session_state["experiment"] = experiment
    at.session_state["generate_prompt"] = "<b>hi</b>"
    at.run()
    assert not at.exception
    html = output_html(at)
    assert html.count("&lt;b&gt;hi&lt;/b&gt;") >= 1 and "<b>" not in html and "<img" not in html
    # a pill's label is Markdown: the corpus's words arrive escaped, and show as typed
    assert at.pills[0].options == [plain("<b>hi</b> <img"), plain("<b>hi</b> you")]


@pytest.fixture(scope="module")
def emoji():
    from test_generate_ids import emoji_experiment
    return emoji_experiment()


def test_a_byte_level_bpe_model_marks_one_pick_per_step_and_writes_whole_emoji(emoji):
    """Tokens that each hold part of an emoji read the same: the bars stay apart by id, and
    the text is decoded once, so the emoji shows whole."""
    at = app_test(PAGE)
    at.session_state["experiment"] = emoji
    at.session_state["generate_prompt"] = "the"
    at.session_state["generate_max_new"] = 20
    at.run()
    assert not at.exception, at.exception
    tokenizer = emoji.dataset.tokenizer
    seen_emoji = False
    for seed in range(4):
        at.number_input(key="generate_seed").set_value(seed).run()
        assert not at.exception, at.exception
        table = candidates(at)
        assert table.groupby("step")["picked"].sum().eq(1).all()
        assert not table.duplicated(["step", "candidate"]).any()  # one bar per candidate
        picked = table[table["picked"]].sort_values("step")["token_id"].tolist()
        stops = (emoji.dataset.pad_id, emoji.dataset.eos_id)
        text = tokenizer.decode(tokenizer.encode("the") + [i for i in picked if i not in stops])
        assert html_module.unescape(output_text(at)) == text
        seen_emoji = seen_emoji or any(ch in text for ch in "🐱🐶🐭🐹🐰🐻🦊")
    assert seen_emoji
