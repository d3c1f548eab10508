"""Shareable links on the Model lab pages: a link's settings show up in the widgets, survive a
visit to another page, and wait for a model on Generate (see ui.links)."""

from conftest import app_test
from minillm.experiment import Experiment, TrainSettings

LINK = {"train_block": "8", "train_lr": "0.01", "train_eos": "true", "train_seed": "7",
        "train_loss_on": "every position (GPT style)", "train_corpus": "Cats and dogs (the notebook)"}


def test_a_train_link_sets_every_widget_and_survives_a_visit_to_generate():
    at = app_test("app.py")
    at.query_params.update(LINK)
    at.run()
    at.switch_page("pages/train.py").run()
    assert not at.exception
    values = {"block": 8, "lr": 0.01, "eos": True, "seed": 7, "loss_on": "every"}
    assert at.slider(key="train_block").value == 8 and at.select_slider(key="train_lr").value == 0.01
    assert at.toggle(key="train_eos").value and at.number_input(key="train_seed").value == 7
    assert at.radio(key="train_loss_on").value == values["loss_on"]
    assert not at.info or "The link" not in " ".join(str(i.value) for i in at.info)
    at.switch_page("pages/home.py").run()
    at.switch_page("pages/train.py").run()  # persist_state="session" keeps them
    assert not at.exception
    assert at.slider(key="train_block").value == 8 and at.number_input(key="train_seed").value == 7


def test_a_generate_link_opened_before_any_model_applies_once_there_is_one():
    at = app_test("pages/generate.py")
    at.query_params.update(generate_temperature="0.5", generate_max_new="7", generate_prompt="the dog")
    at.run()
    assert not at.exception and "no trained model" in at.info[0].value
    exp = Experiment(TrainSettings(epochs=10))
    exp.trainer.run(10)
    at.session_state["experiment"] = exp
    at.run()
    assert not at.exception
    assert at.slider(key="generate_temperature").value == 0.5
    assert at.slider(key="generate_max_new").value == 7
    assert at.text_input(key="generate_prompt").value == "the dog"
