"""Bad input on the Model lab pages (Train, Generate, Attention): never an exception, always a
plain message, and the model trained before the bad input is still there afterwards.

A small model is trained once for the module and put into each page's session first, as if
the student had trained it; a bad corpus, prompt or link must not cost it.
"""

import pytest

from conftest import app_test
from minillm.experiment import Experiment, TrainSettings
from ui import model_state
from ui.train_widgets import PASTE, UPLOAD

MAX_RUNS = 60  # script runs before the diverging run must have finished


@pytest.fixture(scope="module")
def trained():
    exp = Experiment(TrainSettings(epochs=30))
    exp.trainer.run(30)
    return exp


def run(at):
    at.run()
    assert not at.exception, at.exception
    return at


def messages(at):
    """Everything the page said, backslash escapes (ui.plain_text) removed."""
    parts = [*at.error, *at.warning, *at.info, *at.success, *at.caption, *at.markdown]
    return "\n".join(str(p.value) for p in parts).replace("\\", "")


# --- the bad inputs: (page, link params, what the student does) -------------------------------

def paste(text):
    def act(at):
        at.selectbox(key="train_corpus").set_value(PASTE)
        run(at).text_area(key="train_text").set_value(text)
    return act


def upload(data):
    def act(at):
        at.selectbox(key="train_corpus").set_value(UPLOAD)
        run(at).file_uploader(key="train_file").upload("mine.txt", data, "text/plain")
    return act


def prompt(text):
    return lambda at: at.text_input(key="generate_prompt").set_value(text)


def context(text):
    def act(at):
        at.segmented_control(key="attention_source").set_value("Type a context")
        run(at).text_input(key="attention_text").set_value(text)
    return act


def block(size):
    return lambda at: at.slider(key="train_block").set_value(size)


TRAIN, GENERATE, ATTENTION = "pages/train.py", "pages/generate.py", "pages/attention.py"
XSS = "<img src=x onerror=alert(1)> <script>alert(1)</script>"

CASES = {
    "empty paste": (TRAIN, {}, paste(""), "The text is empty"),
    "whitespace only": (TRAIN, {}, paste("   \n\t  \n "), "The text is empty"),
    "one word": (TRAIN, {}, paste("hello"), "it needs at least two words"),
    "over-limit paste": (TRAIN, {}, paste("the cat sat\n" * 5000), "the limit is 50,000"),
    "5 MB upload": (TRAIN, {}, upload(b"the cat sat\n" * 440_000), "5.3 MB; the limit is 200 kB"),
    "binary upload": (TRAIN, {}, upload(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), "not plain text"),
    "emoji CJK right-to-left": (TRAIN, {}, paste("🐱 喜欢 吃 鱼\nשלום עולם 🐶\nمرحبا بالعالم"),
                                "windows (context → next token)"),
    "control characters and NUL": (TRAIN, {}, paste("the cat\x00 sat\x1b on\x07 the mat\nthe dog ran"),
                                   "Removed 3 invisible control character(s)"),
    "10,000-character word": (TRAIN, {}, paste("a" * 10_000 + " b\nb c"),
                              "windows (context → next token)"),
    "HTML and script as corpus": (TRAIN, {}, paste(XSS + "\nthe cat sat"),
                                  "windows (context → next token)"),
    "block size past the longest sentence": (TRAIN, {}, block(16),
                                             "The longest sentence has 6 tokens"),
    "malformed link on Train": (TRAIN, {"train_block": "abc"}, None,
                                "The link asked for block size = 'abc', which isn't a valid choice "
                                "(a whole number from 1 to 16), so the default (5) is used."),
    "HTML and script as prompt": (GENERATE, {}, prompt(XSS), "has never seen the words '<img'"),
    "unknown prompt words": (GENERATE, {}, prompt("zebra quantum"),
                             "never seen the words 'zebra' and 'quantum', so they were left out"),
    "empty prompt": (GENERATE, {}, prompt("   "), "The prompt is empty"),
    "NUL in the prompt": (GENERATE, {}, prompt("the\x00cat"), "control character(s) were replaced"),
    "malformed link on Generate": (GENERATE, {"generate_temperature": "hot", "generate_top_k": "7"},
                                   None, "The link asked for temperature = 'hot', which isn't a "
                                   "valid choice (a number from 0.1 to 3 in steps of 0.1), so the "
                                   "default (1) is used."),
    "HTML and script as context": (ATTENTION, {}, context(XSS), "has never seen the words '<img'"),
    "malformed link on Attention": (ATTENTION, {"attention_epoch": "abc"}, None,
                                    "The link asked for epoch = 'abc', which isn't a valid choice"),
}


@pytest.mark.parametrize("name", CASES)
def test_bad_input_gets_a_message_and_keeps_the_model(name, trained):
    page, params, act, message = CASES[name]
    at = app_test(page)
    at.session_state["experiment"] = trained
    for key, value in params.items():
        at.query_params[key] = value
    run(at)
    if act is not None:
        act(at)
        run(at)
    assert message in messages(at), messages(at)
    assert at.session_state["experiment"] is trained


def test_a_learning_rate_of_1000_diverges_with_a_message(monkeypatch):
    monkeypatch.setattr(model_state, "CHUNK_SECONDS", 2.0)
    at = app_test(TRAIN)
    at.query_params.update(train_lr="1000", train_epochs="10")  # the link sets the run up
    run(at)
    at.button(key="train_go").click()
    for _ in range(MAX_RUNS):
        run(at)
        if at.session_state["experiment"].trainer.done:
            break
    exp = at.session_state["experiment"]
    assert exp.trainer.done and exp.settings.lr == 1000
    assert "learning rate" in messages(at).lower() or "NaN" in messages(at), messages(at)
