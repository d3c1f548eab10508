"""AppTest of the Train page: training in chunks, Pause/Step/Reset, settings that never cost the
trained model, bad input, and the numbers the lesson is about (the loss floor 0.3839).

`run_every` never fires under AppTest; the page trains one chunk each time its fragment runs
during a script run, so `train_to_the_end` simply runs the script until the trainer is done.
"""


import threading

import pytest
import torch

from conftest import app_test, run_app
from minillm.corpus import MAX_CHARS
from ui import model_state
from ui.train_widgets import fmt
from chart_rows import chart_data

NOTEBOOK_FLOOR = 0.3839  # H(next word | 5-word window) of the notebook's six sentences
MAX_RUNS = 200  # script runs before a test gives up on a training run finishing


@pytest.fixture
def fast_chunks(monkeypatch):
    """Bigger chunks, so a test needs fewer script runs (the chunking itself is unchanged)."""
    monkeypatch.setattr(model_state, "CHUNK_SECONDS", 2.0)
    monkeypatch.setattr(model_state, "CHUNK_MAX_EPOCHS", 400)


def page():
    at = app_test("pages/train.py").run()
    assert not at.exception
    return at


def run(at):
    at.run()
    assert not at.exception, at.exception
    return at


def click(at, key):
    at.button(key=key).click()
    return run(at)


def experiment(at):
    return at.session_state["experiment"] if "experiment" in at.session_state else None


def train_to_the_end(at):
    """Press Train, then rerun until the run is finished; returns the Experiment."""
    click(at, "train_go")
    for _ in range(MAX_RUNS):
        if experiment(at).trainer.done:
            return experiment(at)
        run(at)
    raise AssertionError(f"training did not finish in {MAX_RUNS} script runs")


def texts(elements):
    return "\n".join(str(element.value) for element in elements)


def test_the_page_asks_its_question_and_shows_the_data_before_any_training():
    at = page()
    assert at.title[0].value == "Train"
    assert at.header[0].value == (
        "Can a tiny model learn to predict the next word? How low can its mistakes go?")
    assert "No model yet" in texts(at.info)
    assert at.button(key="train_pause").disabled and at.button(key="train_reset").disabled
    # the notebook's data: 15 ids with PAD, 28 windows, the floor 0.3839
    assert "28 windows" in texts(at.markdown) and "floor = 0.3839" in texts(at.markdown)
    vocab, windows, ambiguous = (frame.value for frame in at.dataframe)
    assert len(vocab) == 15 and vocab["token"].iloc[-1] == "PAD"
    assert len(windows) == 28 and windows.iloc[0].tolist() == ["PAD PAD PAD PAD the", "cat"]
    assert "PAD PAD PAD PAD the" in ambiguous["context"].tolist()  # cat (3) or dog (3)


def test_a_short_run_trains_to_its_done_marker(fast_chunks):
    at = page()
    at.number_input(key="train_epochs").set_value(50)
    exp = train_to_the_end(run(at))
    assert exp.trainer.epoch == 50 and exp.trainer.stopped_reason is None
    assert at.success[0].value.startswith("Training done: 50 epochs in ")
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["Parameters"] == "13,839" and metrics["Loss floor"] == "0.3839"
    assert "of what can be learned" in texts(at.markdown)
    assert at.progress[0].value == 100
    curve, rules = (next(d for d in chart_data(at) if column in d) for column in ("run", "what"))
    assert curve["epoch"].tolist() == list(range(1, 51))
    assert curve["loss"].tolist() == pytest.approx(exp.trainer.history)
    assert rules["what"].tolist() == [
        "ln|V| = 2.708: a model that knows nothing",
        "floor = 0.3839: the best any model can do on this data"]
    assert at.button(key="train_step").disabled  # nothing left to step once done
    # only the curves travel as a table (Arrow, converted on every tick); the lines are inline
    assert len(at.get("vega_lite_chart")[0].proto.datasets) == 1


def test_a_run_that_ends_in_its_clicks_chunk_is_drawn_done_in_that_run(fast_chunks, monkeypatch):
    """The click trains its first chunk before the buttons and the timer are drawn: a run that
    ends in it (in a busy class one chunk is a whole default run) is drawn done by the click's
    own script run, with no `st.rerun` to turn the timer off (one page run fewer for each of
    thirty students)."""
    import streamlit

    reruns = []
    real_rerun = streamlit.rerun
    monkeypatch.setattr(streamlit, "rerun", lambda *a, **k: (reruns.append(1), real_rerun(*a, **k)))
    at = page()
    at.number_input(key="train_epochs").set_value(50)
    click(run(at), "train_go")
    assert experiment(at).trainer.done and not reruns
    assert at.success[0].value.startswith("Training done: 50 epochs in ")
    assert at.button(key="train_pause").disabled and at.button(key="train_step").disabled


def test_the_notebook_settings_reach_the_loss_floor(fast_chunks):
    """The acceptance test: the notebook's run, trained by the page (chunking does not change
    the result: every epoch is one full-batch step)."""
    at = page()
    exp = train_to_the_end(at)
    assert exp.trainer.epoch == 300
    assert exp.floor == pytest.approx(NOTEBOOK_FLOOR, abs=5e-5)
    loss = exp.summary()["loss"]
    assert abs(loss - NOTEBOOK_FLOOR) < 0.005
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["Final training loss"] == f"{loss:.4f}"
    assert "The model has learned 99." in texts(at.markdown)


def test_pause_step_resume_and_reset():
    at = page()
    click(at, "train_go")  # trains the first chunk
    first = experiment(at).trainer.epoch
    assert 0 < first <= model_state.CHUNK_MAX_EPOCHS

    click(at, "train_pause")
    paused_at = experiment(at).trainer.epoch
    assert at.button(key="train_pause").label == "Resume"
    run(run(at))
    assert experiment(at).trainer.epoch == paused_at  # paused: reruns train nothing

    click(at, "train_step")
    stepped = experiment(at).trainer.epoch
    assert paused_at < stepped <= paused_at + model_state.CHUNK_MAX_EPOCHS
    run(at)
    assert experiment(at).trainer.epoch == stepped  # one chunk per Step, still paused
    curve = next(d for d in chart_data(at) if "run" in d)
    assert curve["epoch"].max() == stepped  # the chart shows the curve up to now
    assert at.progress[0].proto.text.startswith(f"Epoch {stepped} of 300")

    click(at, "train_pause")  # Resume
    assert at.button(key="train_pause").label == "Pause"
    assert experiment(at).trainer.epoch > stepped

    trained = experiment(at)
    click(at, "train_reset")
    assert experiment(at) is None
    assert "No model yet" in texts(at.info)
    past = at.session_state["past_runs"]
    assert len(past) == 1 and past[0]["history"] == trained.trainer.history
    assert past[0]["label"] == "notebook settings"

    click(at, "train_step")  # Step without a model: a new run, paused after one chunk
    assert 0 < experiment(at).trainer.epoch <= model_state.CHUNK_MAX_EPOCHS
    assert at.session_state["train_paused"]


def test_changing_a_setting_keeps_the_trained_model_until_train(fast_chunks):
    at = run_app("pages/train.py")  # through the router, so we can leave the page and return
    assert not at.exception
    at.number_input(key="train_epochs").set_value(40)
    trained = train_to_the_end(run(at))
    history = list(trained.trainer.history)

    at.select_slider(key="train_lr").set_value(0.01)
    at.slider(key="train_block").set_value(3)
    run(at)
    assert experiment(at) is trained and trained.trainer.history == history
    assert "Settings changed — press Train to start a new run with them" in texts(at.info)
    assert at.success[0].value.startswith("Training done: 40 epochs")  # still shown

    at.switch_page("pages/home.py")
    run(at)
    at.switch_page("pages/train.py")
    run(at)  # back again: the model, its summary and the new settings are all still there
    assert experiment(at) is trained and trained.trainer.history == history
    assert at.select_slider(key="train_lr").value == 0.01
    assert "Settings changed" in texts(at.info) and at.success

    click(at, "train_go")
    assert experiment(at) is not trained
    assert experiment(at).settings.lr == 0.01 and experiment(at).settings.block_size == 3
    assert at.session_state["past_runs"][-1] == {
        "label": "40 epochs", "history": history, "floor": trained.floor,
        "start_loss": trained.start_loss}
    assert "Settings changed" not in texts(at.info)


def test_a_diverging_learning_rate_stops_with_a_warning_and_keeps_the_model(fast_chunks):
    at = page()
    at.select_slider(key="train_lr").set_value(1000.0)
    exp = train_to_the_end(run(at))
    assert exp.trainer.stopped_reason and exp.trainer.epoch < 300
    assert "the learning rate 1000 is too high" in texts(at.warning)
    assert "kept the last good weights" in texts(at.warning)
    assert not at.success  # not "done": stopped
    assert "shot up" not in texts(at.warning)  # one warning is enough
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["Final training loss"] == fmt(exp.summary()["loss"])  # the best weights' loss
    assert experiment(at) is exp and exp.trainer.history
    assert all(torch.isfinite(p).all() for p in exp.model.parameters())


def test_a_too_high_learning_rate_that_never_gives_nan_is_still_called_out(fast_chunks):
    at = page()
    at.select_slider(key="train_lr").set_value(1.0)
    at.number_input(key="train_epochs").set_value(60)
    exp = train_to_the_end(run(at))
    assert "The learning rate 1 is too high: on the way the loss shot up" in texts(at.warning)
    # the engine's sentence, word for word: a notebook gets it from Experiment.verdicts()
    assert exp.verdicts() == [exp.summary()["verdict_sentences"]["lr_too_high"]]
    assert exp.verdicts()[0] in texts(at.warning)


@pytest.mark.parametrize("text, message", [
    ("", "The text is empty"),
    ("   \n\n  ", "The text is empty"),
    ("hello", "at least two words"),
    ("word " * (MAX_CHARS // 5 + 1), "the limit is 50,000"),
    ("hello\nworld", "no (context -> next token) pairs"),
], ids=["empty", "blank", "one word", "over the limit", "one word per line"])
def test_a_bad_pasted_corpus_shows_why_and_keeps_the_model(fast_chunks, text, message):
    at = page()
    at.number_input(key="train_epochs").set_value(20)
    trained = train_to_the_end(run(at))
    at.selectbox(key="train_corpus").set_value("Paste your own sentences")
    run(at)
    at.text_area(key="train_text").set_value(text)
    run(at)
    assert message in texts(at.error)
    assert at.button(key="train_go").disabled
    assert experiment(at) is trained and at.success  # the trained model and its summary stay


def test_a_pasted_corpus_trains():
    at = page()
    at.selectbox(key="train_corpus").set_value("Paste your own sentences")
    run(at)
    at.text_area(key="train_text").set_value("a b a c\na b a d\n<script>x</script> e")
    at.number_input(key="train_epochs").set_value(10)
    exp = train_to_the_end(run(at))
    assert exp.settings.corpus_name == "your sentences" and len(exp.settings.lines) == 3
    assert "<script>x</script>" in at.dataframe[0].value["token"].tolist()  # data, not HTML


@pytest.mark.parametrize("content, message", [
    (b"\x00\x01binary", "not plain text"),
    ("caf\u00e9 ol\u00e9".encode("latin-1"), "not UTF-8"),
    (b"one", "at least two words"),
], ids=["binary", "latin-1", "one word"])
def test_a_bad_upload_shows_why(content, message):
    at = page()
    at.selectbox(key="train_corpus").set_value("Upload a text file (.txt)")
    run(at)
    assert "Upload a .txt file" in texts(at.error)
    at.file_uploader(key="train_file").upload("mine.txt", content, "text/plain")
    run(at)
    assert message in texts(at.error)
    assert at.button(key="train_go").disabled


def test_a_good_upload_becomes_the_corpus():
    at = page()
    at.selectbox(key="train_corpus").set_value("Upload a text file (.txt)")
    run(at)
    at.file_uploader(key="train_file").upload("lines.txt", b"the sun is up\nthe sun is down\n",
                                              "text/plain")
    run(at)
    assert not at.error
    assert "6 windows" in texts(at.markdown)  # 3 (context -> next) pairs per line
    click(at, "train_go")
    assert experiment(at).settings.corpus_name == "lines.txt"


def test_every_position_without_the_mask_peeks_and_the_page_says_so(fast_chunks):
    at = page()
    at.radio(key="train_loss_on").set_value("every")
    at.number_input(key="train_epochs").set_value(200)
    exp = train_to_the_end(run(at))
    result = exp.summary()
    assert result["loss"] < result["floor"] - 0.1 < result["honest_loss"]
    assert "the model was peeking at the answer" in texts(at.error)
    assert at.error[0].value == result["verdict_sentences"]["peeking"] == exp.verdicts()[0]
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["Honest loss"] == f"{result['honest_loss']:.4f}"

    at.toggle(key="train_causal").set_value(True)
    exp = train_to_the_end(run(at))
    assert exp.summary()["loss"] >= exp.floor - 1e-3
    assert "peeking" not in texts(at.error)


def test_heads_are_only_divisors_of_d_model_and_extra_block_positions_are_named_pad():
    at = page()
    assert at.selectbox(key="train_heads").options == ["1", "2", "4", "8", "16"]
    at.select_slider(key="train_d_model").set_value(8)
    run(at)
    assert at.selectbox(key="train_heads").options == ["1", "2", "4", "8"]
    assert "just PAD" not in texts(at.info)
    at.slider(key="train_block").set_value(16)
    run(at)
    # the longest sentence, "the dog barked at the mailman", has 6 words: 5 of context
    assert "no context is longer than 5: the other 11 position(s)" in texts(at.info)


def test_a_trained_bpe_is_offered_and_trains():
    from minillm.bpe import train_bpe
    from ui.train_settings import TOKENIZERS
    from minillm.corpus import CATS_AND_DOGS

    at = page()
    assert "Build a BPE" in texts(at.caption)
    assert at.radio(key="train_tokenizer").options == list(TOKENIZERS.values())
    result = train_bpe("\n".join(CATS_AND_DOGS), 40)
    at.session_state["trained_bpe"] = {"result": result, "merges": 40, "name": "cats"}
    run(at)
    at.radio(key="train_tokenizer").set_value("bpe")
    at.number_input(key="train_epochs").set_value(10)
    exp = train_to_the_end(run(at))
    assert exp.bpe is not None and exp.dataset.tokenizer.vocab_size == 256 + 40


def test_only_five_earlier_runs_are_kept(fast_chunks):
    at = page()
    at.number_input(key="train_epochs").set_value(10)
    run(at)
    for seed in range(7):
        at.number_input(key="train_seed").set_value(seed)
        train_to_the_end(run(at))
    past = at.session_state["past_runs"]
    assert len(past) == model_state.MAX_PAST_RUNS
    assert [run["label"] for run in past] == [f"10 epochs · seed {s}" for s in range(1, 6)]
    curve = next(d for d in chart_data(at) if "run" in d)
    assert list(dict.fromkeys(curve["run"])) == ["this run: 10 epochs · seed 6"] + [
        f"{ago} run{'s' if ago > 1 else ''} ago: 10 epochs · seed {6 - ago}" for ago in range(1, 6)]


def test_a_session_without_a_free_slot_waits_and_then_trains(monkeypatch):
    # The page's own runs never sleep long for a slot: a Train click waits at most
    # CLICK_SLOT_WAIT_SECONDS, only the fragment's timer runs wait up to SLOT_WAIT_SECONDS:
    # with a 10-minute slot wait the page still answers, else AppTest's run times out.
    monkeypatch.setattr(model_state, "SLOT_WAIT_SECONDS", 600)
    monkeypatch.setattr(model_state, "CLICK_SLOT_WAIT_SECONDS", 0.2)
    at = page()
    slots = model_state.training_slots()
    held = 0
    while slots.acquire(timeout=0):
        held += 1
    try:
        click(at, "train_go")
        assert "Waiting for a free slot" in texts(at.info)
        assert experiment(at).trainer.epoch == 0
    finally:
        for _ in range(held):
            slots.release()
    run(at)
    assert "Waiting for a free slot" not in texts(at.info)
    assert experiment(at).trainer.epoch > 0


def test_a_click_that_finds_no_free_slot_waits_for_one_and_is_drawn_done(fast_chunks):
    """In a busy class a Train click waits its turn in line (at most CLICK_SLOT_WAIT_SECONDS)
    instead of leaving it to the fragment's timer reruns, each a redraw for the server: a slot
    that comes free meanwhile trains the run within the click's own page run."""
    at = page()
    at.number_input(key="train_epochs").set_value(50)
    run(at)
    slots = model_state.training_slots()
    held = 0
    while slots.acquire(timeout=0):
        held += 1
    freed = threading.Timer(0.5, lambda: [slots.release() for _ in range(held)])
    freed.start()
    try:
        click(at, "train_go")
    finally:
        freed.join()
    assert experiment(at).trainer.done
    assert "Waiting for a free slot" not in texts(at.info)
    assert at.success[0].value.startswith("Training done: 50 epochs in ")


def test_students_with_the_same_settings_share_the_loss_chart_frame(monkeypatch, fast_chunks):
    """Altair validates a chart in 0.1-0.3 s: on a class server thirty students training the
    notebook's run must not each pay for it (the frame is built once, their points swapped in)."""
    from ui import train_widgets

    train_widgets._loss_chart_frame.clear()
    built = []
    real = train_widgets.loss_chart
    monkeypatch.setattr(train_widgets, "loss_chart",
                        lambda *args, **kwargs: built.append(1) or real(*args, **kwargs))
    first = page()
    train_to_the_end(first)
    after_one_student = len(built)
    second = page()  # another browser tab: another session
    train_to_the_end(second)
    assert after_one_student >= 1 and len(built) == after_one_student
    curve = next(d for d in chart_data(second) if "run" in d)
    assert len(curve) == len(experiment(second).trainer.history)  # its own points, not the first's


def test_the_progress_line_and_the_summary_say_the_same_final_loss(fast_chunks):
    """With mini-batches the curve's last point is one batch's loss before the last step; the
    summary's is all the windows after it. Once done, the line says the summary's figure."""
    at = page()
    at.number_input(key="train_epochs").set_value(50)
    at.selectbox(key="train_batch").set_value(16)
    exp = train_to_the_end(run(at))
    final = fmt(exp.summary()["loss"])
    assert fmt(exp.trainer.history[-1]) != final  # the two figures the page used to show
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["Final training loss"] == final
    line = at.progress[0].proto.text
    assert line == f"Epoch 50 of 50 · final training loss {final}"


def test_the_progress_line_says_the_epoch_the_curve_has_reached(fast_chunks, monkeypatch):
    monkeypatch.setattr(model_state, "CHUNK_MAX_EPOCHS", 7)
    at = page()
    click(at, "train_go")
    for _ in range(3):
        curve = next(d for d in chart_data(run(at)) if "run" in d)
        drawn = int(curve.loc[curve["run"].str.startswith("this run"), "epoch"].max())
        assert at.progress[0].proto.text.startswith(f"Epoch {drawn} of 300 · loss ")
