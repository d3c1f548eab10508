"""AppTest of the lesson "Does it write a new line?": the Train page's generated stories,
held-out share, layers and batch size; the held-out curve, bits per character and the
verdicts in words; Generate's creating-or-remembering batch; Attention's layer picker.

Every expected number is recomputed from the run the page made (its Experiment), never
typed in: the tests check that the page shows what the engine measured.
"""

import numpy as np
import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

from conftest import app_test, page_with, run_app
from minillm import inspect
from minillm.charts.training import HELDOUT_RUN
from minillm.experiment import Experiment, TrainSettings
from minillm.stories import StoryGrammar, StorySettings, generate_stories
from ui import model_state
from ui.train_settings import STORIES
from chart_rows import chart_data

MAX_RUNS = 200


@pytest.fixture(autouse=True)
def fast_chunks(monkeypatch):
    """Bigger chunks, so a test needs fewer script runs (the chunking itself is unchanged)."""
    monkeypatch.setattr(model_state, "CHUNK_SECONDS", 5.0)
    monkeypatch.setattr(model_state, "CHUNK_MAX_EPOCHS", 1000)


def run(at):
    at.run()
    assert not at.exception, at.exception
    return at


def experiment(at):
    return at.session_state["experiment"] if "experiment" in at.session_state else None


def train_to_the_end(at):
    at.button(key="train_go").click()
    run(at)
    for _ in range(MAX_RUNS):
        if experiment(at).trainer.done:
            return experiment(at)
        run(at)
    raise AssertionError(f"training did not finish in {MAX_RUNS} script runs")


def curves_and_rules(at):
    frames = chart_data(at)
    return (next(d for d in frames if "run" in d), next(d for d in frames if "what" in d))


def texts(*kinds):
    return "\n".join(str(element.value) for kind in kinds for element in kind)


def metrics(at):
    return {metric.label: metric.value for metric in at.metric}


def stories_page(sentences=100, **widgets):
    """The Train page with the stories preset of `sentences`, and other widgets set."""
    at = run(app_test("pages/train.py"))
    at.selectbox(key="train_corpus").set_value(STORIES)
    run(at)
    at.slider(key="train_story_sentences").set_value(sentences)
    for key, value in widgets.items():
        kind = {"train_epochs": "number_input", "train_lr": "select_slider",
                "train_loss_on": "radio", "train_causal": "toggle", "train_batch": "selectbox",
                "train_story_seed": "number_input", "train_eos": "toggle"}.get(key, "slider")
        getattr(at, kind)(key=key).set_value(value)
    return run(at)


def test_the_stories_preset_trains_with_its_held_out_curve_and_floors():
    at = stories_page(300, train_epochs=60, train_batch=64)
    exp = train_to_the_end(at)
    story = StorySettings(seed=0)
    lines, nats = generate_stories(story, 300).by_story()
    assert exp.settings.lines == lines and exp.line_nats == nats
    assert exp.story_settings == story and exp.settings.corpus_name.startswith(STORIES)
    assert exp.trainer.batch_size == 64 and exp.valid is not None

    curves, rules = curves_and_rules(at)
    held = curves[curves["run"] == HELDOUT_RUN]
    assert held["epoch"].tolist() == [e for e, _ in exp.trainer.valid_history]
    assert held["loss"].tolist() == pytest.approx([v for _, v in exp.trainer.valid_history])
    assert rules["what"].tolist()[1] == f"floor = {exp.floor:.4f}: the floor for memorising this data"
    assert rules["loss"].tolist()[2] == pytest.approx(exp.heldout_floor_loss)
    assert rules["what"].tolist()[2].startswith(f"held-out floor = {exp.heldout_floor_loss:.4f}")

    result = exp.summary()
    shown = metrics(at)
    assert shown["Held-out loss"] == f"{result['valid_loss']:.4f}"
    assert shown["Training bits/char"] == f"{result['train_bits']:.3f}"
    assert shown["Held-out bits/char"] == f"{result['valid_bits']:.3f}"
    assert shown["Held-out floor bits/char"] == f"{result['heldout_floor_bits']:.3f}"
    said = texts(at.markdown, at.info, at.warning)
    assert f"against the language's floor of {result['heldout_floor_bits']:.3f}" in said
    intro = inspect.first_sentence_tokens(exp.split.train, exp.tokenizer)
    assert exp.settings.block_size < intro  # the notebook's 5 words: the name is out of sight
    assert f"The block size is 5 words, but a story's first sentence has at least {intro}" in said


def test_a_block_size_that_reaches_the_name_says_nothing_about_it():
    at = stories_page(100, train_block=12, train_epochs=20)
    exp = train_to_the_end(at)
    assert inspect.first_sentence_tokens(exp.split.train, exp.tokenizer) <= 12
    assert "out of sight" not in texts(at.info)


def test_a_held_out_share_of_0_draws_no_held_out_curve():
    at = stories_page(100, train_valid=0, train_epochs=20)
    exp = train_to_the_end(at)
    assert exp.valid is None and exp.settings.valid_share == 0
    curves, rules = curves_and_rules(at)
    assert HELDOUT_RUN not in set(curves["run"]) and len(rules) == 2
    assert rules["what"].tolist()[1].endswith("the best any model can do on this data")
    assert f"No held-out lines: {exp.valid_reason}" in texts(at.info)
    assert "Held-out loss" not in metrics(at)


def test_the_notebooks_six_sentences_say_why_and_still_reach_0_3845():
    at = run(app_test("pages/train.py"))
    exp = train_to_the_end(at)
    assert exp.valid is None and "at least 10" in exp.valid_reason
    assert f"No held-out lines: {exp.valid_reason}" in texts(at.info)
    # the notebook's figure, said as the summary says it
    assert at.progress[0].proto.text == "Epoch 300 of 300 · final training loss 0.3845"
    curves, rules = curves_and_rules(at)
    assert set(curves["run"]) == {"this run: notebook settings"}
    assert rules["what"].tolist()[1] == "floor = 0.3839: the best any model can do on this data"
    assert "The model has learned 99." in texts(at.markdown)


def test_a_small_stories_corpus_and_many_epochs_overfit_and_the_page_says_so():
    at = stories_page(100, train_block=8, train_lr=0.01, train_epochs=150)
    exp = train_to_the_end(at)
    result = exp.summary()
    assert "overfitting" in result["verdicts"]
    # what the sentence rests on, from the run's own numbers
    assert result["valid_loss"] > result["valid_best"] and result["valid_best_epoch"] < 150
    assert result["loss"] <= min(exp.trainer.history) + 0.02
    said = texts(at.warning)
    assert (f"The held-out loss was lowest at epoch {result['valid_best_epoch']} "
            f"({result['valid_best']:.4f}) and has risen since (now "
            f"{result['valid_loss']:.4f}), while the training loss kept falling") in said
    assert "the model is memorising its lines, not learning the language" in said


def test_a_batch_size_trains_on_batches_and_the_axis_says_so():
    at = run(app_test("pages/train.py"))
    at.selectbox(key="train_batch").set_value(16)
    at.number_input(key="train_epochs").set_value(20)
    exp = train_to_the_end(run(at))
    assert exp.settings.batch_size == 16 and exp.trainer.batch_size == 16
    spec = at.get("vega_lite_chart")[0].proto.spec
    assert "Epoch (one step on 16 windows drawn at random)" in spec
    assert "batch 16" in exp.settings.label()


def test_the_block_size_label_names_the_tokens():
    at = run(app_test("pages/train.py"))
    assert at.slider(key="train_block").label == "Block size (tokens of context: words)"
    at.radio(key="train_tokenizer").set_value("character")
    run(at)
    assert at.slider(key="train_block").label == "Block size (tokens of context: characters)"


def test_a_link_sets_the_new_settings_and_a_bad_one_gets_a_notice():
    at = app_test("pages/train.py")
    at.query_params.update(train_corpus=STORIES, train_story_sentences="500",
                           train_story_seed="3", train_story_new_names="20",
                           train_story_typos="2", train_story_nouns="5", train_story_verbs="4",
                           train_valid="20", train_layers="2", train_batch="64")
    run(at)
    assert at.selectbox(key="train_corpus").value == STORIES
    assert at.slider(key="train_story_sentences").value == 500
    assert at.number_input(key="train_story_seed").value == 3
    assert [at.slider(key=f"train_story_{k}").value for k in ("new_names", "typos", "nouns", "verbs")] \
        == [20, 2, 5, 4]
    assert at.slider(key="train_valid").value == 20 and at.slider(key="train_layers").value == 2
    assert at.selectbox(key="train_batch").value == 64
    assert "The link" not in texts(at.info)
    at.button(key="train_go").click()
    run(at)
    settings = experiment(at).settings
    assert (settings.n_layers, settings.batch_size, settings.valid_share) == (2, 64, 0.2)
    assert experiment(at).story_settings == StorySettings(n_nouns=5, n_verbs=4, new_name_rate=0.2,
                                                          typo_rate=0.02, seed=3)

    bad = app_test("pages/train.py")
    bad.query_params.update(train_layers="9", train_batch="7", train_valid="abc")
    run(bad)
    notices = texts(bad.info)
    assert "layers = '9'" in notices and "batch size = '7'" in notices
    assert "held-out share = 'abc'" in notices
    assert bad.slider(key="train_layers").value == 1 and bad.selectbox(key="train_batch").value == 0


# --- Generate: creating or remembering ------------------------------------------------------

@pytest.fixture(scope="module")
def stories_model():
    story = StorySettings(seed=0)
    lines, nats = generate_stories(story, 400).by_story()
    exp = Experiment(TrainSettings(lines=lines, block_size=12, epochs=120, lr=1e-2),
                     line_nats=nats, story_settings=story)
    exp.trainer.run()
    return exp


def test_generate_judges_a_batch_of_stories_sentence_by_sentence(stories_model):
    exp = stories_model
    at = page_with("pages/generate.py", exp)
    at.text_input(key="generate_prompt").set_value("once there")
    run(at)
    samples = inspect.sample_batch(exp.model, exp.dataset, "once there", inspect.BATCH_SAMPLES,
                                   inspect.batch_tokens(exp.dataset), seed=42)
    expected = inspect.creating_or_remembering(samples, exp.split.train, exp.split.valid,
                                               StoryGrammar(exp.story_settings))
    total = len(expected.sentences)
    assert total > inspect.BATCH_SAMPLES  # a few sentences a sample
    assert f"{expected.new_and_correct} of {total} sentences are new and correct" in texts(at.markdown)
    table = next(frame.value for frame in at.dataframe if "found in" in frame.value)
    assert table["sentence"].tolist() == [s.text for s in expected.sentences]
    assert table["a sentence of the grammar"].tolist() == [s.valid for s in expected.sentences]
    shown = metrics(at)
    assert shown["In the training lines"] == f"{expected.share(inspect.IN_TRAINING):.0%}"
    assert shown["New and correct"] == f"{expected.new_and_correct / total:.0%}"

    at.number_input(key="generate_seed").set_value(7)  # another batch
    run(at)
    other = inspect.creating_or_remembering(
        inspect.sample_batch(exp.model, exp.dataset, "once there", inspect.BATCH_SAMPLES,
                             inspect.batch_tokens(exp.dataset), seed=7),
        exp.split.train, exp.split.valid, StoryGrammar(exp.story_settings))
    table = next(frame.value for frame in at.dataframe if "found in" in frame.value)
    assert table["sentence"].tolist() == [s.text for s in other.sentences]


def test_generate_on_the_notebooks_model_says_nothing_is_held_out():
    from conftest import trained_experiment

    exp = trained_experiment(epochs=150, eos=True)
    at = page_with("pages/generate.py", exp)
    said = texts(at.markdown)
    assert "sentences are new" in said and "new and correct" not in said
    assert "This model has no held-out lines (Only 6 lines" in said
    table = next(frame.value for frame in at.dataframe if "found in" in frame.value)
    assert "a sentence of the grammar" not in table.columns


# --- Attention: a layer picker for deeper models -------------------------------------------

def test_two_layers_on_train_then_attention_shows_a_layer_picker():
    at = run_app("pages/train.py")
    assert not at.exception
    at.slider(key="train_layers").set_value(2)
    at.number_input(key="train_epochs").set_value(30)
    exp = train_to_the_end(run(at))
    assert exp.model.config.n_layers == 2
    at.switch_page("pages/attention.py")
    run(at)
    picker = at.segmented_control(key="attention_layer")
    assert picker.options == ["1", "2"] and picker.value == 1
    context = exp.dataset.X[4].tolist()

    def drawn_head_1():
        chart = at.get("vega_lite_chart")[0].proto
        data = convert_arrow_bytes_to_pandas_df(chart.datasets[0].data.data)
        return data.sort_values(["position", "looks_at"])["weight"].to_numpy().reshape(5, 5)

    _, first = inspect.attention_maps(exp.model, exp.dataset, context, 0)
    np.testing.assert_allclose(drawn_head_1(), first[0], atol=1e-6)
    picker.set_value(2)
    run(at)
    _, second = inspect.attention_maps(exp.model, exp.dataset, context, 1)
    np.testing.assert_allclose(drawn_head_1(), second[0], atol=1e-6)
    assert "Layer 2 of 2" in texts(at.markdown)
    assert len(at.get("vega_lite_chart")) == 4  # two heads, their average, the embedding map
    at.select_slider(key="attention_epoch").set_value(0)  # replay: the untrained model's layer 2
    run(at)
    _, fresh = inspect.attention_maps(inspect.replay(exp).model(0), exp.dataset, context, 1)
    np.testing.assert_allclose(drawn_head_1(), fresh[0], atol=1e-6)


def test_one_layer_has_no_layer_picker():
    from conftest import trained_experiment

    at = page_with("pages/attention.py", trained_experiment(epochs=20))
    assert at.segmented_control(key="attention_source")  # the page's other picker is there
    with pytest.raises(KeyError):
        at.segmented_control(key="attention_layer")
