"""AppTest of the Attention page, and the Model lab flow across pages through app.py."""

import json

import numpy as np
import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

from conftest import ROOT, app_test, run_app, trained_experiment
from conftest import page_with as conftest_page_with
from minillm import inspect
from minillm.experiment import Experiment, TrainSettings
from minillm.model import build_model

PAGE = "pages/attention.py"
EPOCHS = 60


@pytest.fixture(scope="module")
def trained():
    return trained_experiment(epochs=EPOCHS)


@pytest.fixture(scope="module")
def causal():
    return trained_experiment(epochs=30, causal=True, loss_on="every")


def page_with(experiment):
    return conftest_page_with(PAGE, experiment)


def charts(at) -> dict:
    """{chart title: (spec, data)}; the embedding map (no title) is "embedding"."""
    out = {}
    for chart in at.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        data = convert_arrow_bytes_to_pandas_df(chart.proto.datasets[0].data.data)
        title = spec.get("title", {}).get("text", "embedding")
        out[title] = (spec, data)
    return out


def maps(at) -> dict:
    """{map name: (T, T) weights as drawn}."""
    out = {}
    for title, (_, data) in charts(at).items():
        if title != "embedding":
            T = int(data["position"].max()) + 1
            out[title] = data.sort_values(["position", "looks_at"])["weight"].to_numpy().reshape(T, T)
    return out


def text(at) -> str:
    return "\n".join(e.value for kind in (at.markdown, at.warning, at.info, at.caption) for e in kind)


def test_without_a_model_the_page_says_so_and_trains_the_notebooks_one():
    at = app_test(PAGE).run()
    assert not at.exception
    assert at.header[0].value == "When the model predicts the next word, which earlier words does it look at?"
    assert "no trained model in this session" in at.info[0].value
    assert not at.get("vega_lite_chart")
    at.button(key="attention_train_now").click().run()
    assert not at.exception
    assert at.session_state["experiment"].trainer.epoch == 300
    assert list(charts(at)) == ["head 1", "head 2", inspect.AVERAGE, "embedding"]


def test_the_notebooks_window_per_head_and_the_average(trained):
    at = page_with(trained)
    assert at.selectbox(key="attention_window").format_func(at.selectbox(key="attention_window").value) \
        == "the cat sat on the → mat"
    drawn = maps(at)
    assert list(drawn) == ["head 1", "head 2", inspect.AVERAGE]
    _, weights = inspect.attention_maps(trained.model, trained.dataset, trained.dataset.X[4].tolist())
    np.testing.assert_allclose(drawn["head 1"], weights[0], atol=1e-6)
    np.testing.assert_allclose(drawn["head 2"], weights[1], atol=1e-6)
    np.testing.assert_allclose(drawn[inspect.AVERAGE], weights.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(drawn[inspect.AVERAGE].sum(axis=1), 1.0, atol=1e-5)
    spec = charts(at)[inspect.AVERAGE][0]
    assert spec["title"]["subtitle"] == "= the notebook's attn_weights"
    assert "Causal mask off" in text(at)


def test_picking_another_window_redraws(trained):
    at = page_with(trained)
    at.selectbox(key="attention_window").set_value(0).run()  # PAD PAD PAD PAD the → cat / dog
    assert not at.exception
    (_, data) = charts(at)["head 1"]
    assert list(data.sort_values("position")["token"].unique()) == ["PAD", "the"]
    assert data.groupby("position")["token"].first().tolist() == ["PAD", "PAD", "PAD", "PAD", "the"]


def test_replaying_epoch_0_shows_the_untrained_model(trained):
    at = page_with(trained)
    assert at.select_slider(key="attention_epoch").options == [str(e) for e in range(0, EPOCHS + 1, 6)]
    at.select_slider(key="attention_epoch").set_value(0).run()
    assert not at.exception
    fresh = build_model(trained.model.config, trained.settings.seed)
    _, weights = inspect.attention_maps(fresh, trained.dataset, trained.dataset.X[4].tolist())
    np.testing.assert_allclose(maps(at)["head 1"], weights[0], atol=1e-6)
    assert "Weights after epoch 0" in text(at)
    at.select_slider(key="attention_epoch").set_value(EPOCHS).run()
    _, live = inspect.attention_maps(trained.model, trained.dataset, trained.dataset.X[4].tolist())
    np.testing.assert_allclose(maps(at)["head 1"], live[0], atol=1e-6)


def test_the_causal_mask_is_visible(causal):
    at = page_with(causal)
    for name, weights in maps(at).items():
        assert (weights[np.triu_indices(5, 1)] == 0).all(), name
    _, data = charts(at)["head 1"]
    hidden = data[data["hidden"]]
    assert len(hidden) == 10 and set(hidden["cell"]) == {"hidden"}
    assert (hidden["looks_at"] > hidden["position"]).all()
    assert "Causal mask on" in text(at)


def test_every_position_without_the_mask_is_called_cheating():
    cheat = Experiment(TrainSettings(epochs=5, loss_on="every", causal=False))
    cheat.trainer.run()
    at = page_with(cheat)
    assert "That is cheating" in at.warning[0].value


def test_embedding_map_has_every_token(trained):
    at = page_with(trained)
    spec, data = charts(at)["embedding"]
    assert sorted(data["token"]) == sorted(trained.dataset.label(i) for i in range(trained.dataset.vocab_size))
    assert "Axis 1 shows" in text(at) and "a flat map cannot show" in text(at)


def test_the_country_lines_map_names_what_can_be_read_and_what_the_student_picks():
    """87 tokens: the old map wrote all their names over one another."""
    from minillm.corpus import COUNTRY_STYLE

    exp = trained_experiment(lines=COUNTRY_STYLE, epochs=5)
    at = page_with(exp)
    _, data = charts(at)["embedding"]
    named = data[data["labelled"]]
    assert len(data) > 50 and 0 < len(named) < len(data) / 2
    first, second = (float(v) for v in inspect.embedding_map(
        exp.model, exp.dataset, inspect.map_ids(exp.dataset, 150)).attrs["explained"])
    assert f"together {first + second:.0%}" in text(at)
    assert f"{len(named)} of them named" in text(at)
    picks = [int(i) for i in data["id"][:3]]
    at.multiselect(key="attention_map_tokens").set_value(picks).run()
    _, data = charts(at)["embedding"]
    assert sorted(data.loc[data["labelled"], "id"]) == sorted(picks)


def test_a_typed_context(trained):
    at = page_with(trained)
    at.segmented_control(key="attention_source").set_value("Type a context").run()
    assert not at.exception
    assert at.text_input(key="attention_text").value == "the cat sat on the"
    assert list(charts(at)["head 1"][1].groupby("position")["token"].first()) == ["the", "cat", "sat", "on", "the"]
    at.text_input(key="attention_text").set_value("the dog chased the ball slept").run()
    assert not at.exception
    assert "reads only the last 5 tokens" in text(at)
    assert list(charts(at)["head 1"][1].groupby("position")["token"].first()) == ["dog", "chased", "the", "ball", "slept"]


@pytest.mark.parametrize("typed, expected", [
    ("", "The prompt is empty"),
    ("zebra", "never seen the word \\'zebra\\'"),
    ("🐱 the cat", "never seen the word \\'🐱\\'"),
    ("<img src=x onerror=alert(1)>", "\\'\\<img\\'"),
    ("the\x00cat", "invisible control character"),
], ids=["empty", "unknown", "emoji", "html", "control"])
def test_bad_typed_contexts_get_a_message_and_keep_the_model(trained, typed, expected):
    at = page_with(trained)
    at.segmented_control(key="attention_source").set_value("Type a context").run()
    at.text_input(key="attention_text").set_value(typed).run()
    assert not at.exception, at.exception
    assert expected in text(at)
    assert at.session_state["experiment"] is trained
    assert "embedding" in charts(at)  # the rest of the page still works


def test_a_new_model_with_fewer_windows_and_snapshots_resets_the_pickers(trained):
    at = page_with(trained)
    at.selectbox(key="attention_window").set_value(18).run()
    at.select_slider(key="attention_epoch").set_value(54).run()
    smaller = Experiment(TrainSettings(lines=("the cat sat", "the dog sat"), epochs=20))
    smaller.trainer.run()
    at.session_state["experiment"] = smaller
    at.run()
    assert not at.exception, at.exception
    assert at.select_slider(key="attention_epoch").value == 20  # the last epoch again
    assert list(maps(at)) == ["head 1", "head 2", inspect.AVERAGE]



# --------------------------------------------------------------------------------------------
# The Model lab through the router: state carried between pages


def test_flow_train_now_then_generate_then_attention():
    at = run_app("pages/generate.py")
    assert not at.exception, at.exception
    assert "no trained model in this session" in at.info[0].value
    if (ROOT / "pages" / "train.py").exists():  # the way to the Train page is offered
        assert [link.proto.page for link in at.get("page_link")][-1:] == ["train"]
    at.button(key="generate_train_now").click().run()
    assert not at.exception, at.exception
    experiment = at.session_state["experiment"]
    assert any("15 words it wrote" in m.value for m in at.markdown)

    assert any("Runs offline" in c.value for c in at.sidebar.caption)  # it ran through app.py

    at.switch_page("pages/attention.py").run()
    assert not at.exception, at.exception
    assert at.session_state["experiment"] is experiment
    assert any("Runs offline" in c.value for c in at.sidebar.caption)
    assert at.title[0].value == "Attention"
    assert list(charts(at)) == ["head 1", "head 2", inspect.AVERAGE, "embedding"]

    at.switch_page("pages/generate.py").run()
    assert not at.exception and at.session_state["experiment"] is experiment
    assert not [i for i in at.info if "no trained model" in i.value]


class TrainsOnAfterEachLook:
    """A trainer that another thread keeps training: after every look at its epoch or its
    snapshots, the run goes on for `steps` epochs (the page cannot hold it still)."""

    def __init__(self, trainer, steps: int):
        self._trainer, self._steps = trainer, steps

    def __getattr__(self, name):
        value = getattr(self._trainer, name)
        if name in ("epoch", "snapshots") and not self._trainer.done:
            self._trainer.run(self._steps)
        return value


def test_a_run_that_trains_on_while_the_page_draws_it():
    """The page's epochs and the weights it draws come from one look at the run. Reading the
    run again for the weights found the run moved on: KeyError 'no weights kept for epoch'."""
    experiment = Experiment(TrainSettings(epochs=300))  # a snapshot every 30 epochs
    experiment.trainer.run(8)
    experiment.trainer = TrainsOnAfterEachLook(experiment.trainer, steps=5)
    at = page_with(experiment)  # asserts no exception
    epoch = int(at.select_slider(key="attention_epoch").value)
    assert experiment.trainer._trainer.epoch > epoch  # the run went on after the page read it
    assert epoch not in experiment.trainer._trainer.snapshots, \
        "the run must have no weights kept for the drawn epoch, else this test proves nothing"
    reference = Experiment(TrainSettings(epochs=300))
    reference.trainer.run(epoch)
    _, weights = inspect.attention_maps(reference.model, reference.dataset, reference.dataset.X[4].tolist())
    np.testing.assert_allclose(maps(at)["head 1"], weights[0], atol=1e-6)  # drawn as labelled
    assert f"Weights after epoch {epoch};" in text(at)
