"""The load test's websocket student (bench/ws_driver.py): its parsing of what the server
sends and of what the page says (no server needed), and against a real server one student's
whole class flow and the abuser's refused run, so the harness that measures thirty cannot
silently rot."""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import ws_driver  # noqa: E402
from minillm.corpus import MAX_CHARS, MAX_LINES, MAX_VOCAB, load_corpus  # noqa: E402
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: E402
from streamlit.proto.NumberInput_pb2 import NumberInput  # noqa: E402
from streamlit.proto.Slider_pb2 import Slider  # noqa: E402

REFUSAL = (
    "This run is too big for this server: one training step would need about 7.1 GB of memory "
    "(this server allows 500 MB); the whole run would take about 19.3 hours of CPU (this server "
    "allows 2 minutes a run). To fit, change several settings: score the last position only (as "
    "the notebook does), d_model 8, the block size 7. A shorter corpus, or one with fewer "
    "different tokens, also helps.")


def delta(path, kind, run_id="run-1", **fields) -> ForwardMsg:
    """A ForwardMsg drawing one element of `kind` at `path`, as the server sends it."""
    msg = ForwardMsg()
    msg.metadata.delta_path.extend(path)
    inner = getattr(msg.delta.new_element, kind)
    for name, value in fields.items():
        if isinstance(value, (list, tuple)):
            getattr(inner, name).extend(value)
        else:
            setattr(inner, name, value)
    return msg


def element(kind, **fields) -> ws_driver.Element:
    return ws_driver.element_from_delta(delta([0], kind, **fields), "run-1")


def test_user_key_comes_from_the_widget_id():
    assert ws_driver.user_key("$$ID-0123abcd-train_block") == "train_block"
    assert ws_driver.user_key("$$ID-0123abcd-key-with-dashes") == "key-with-dashes"
    assert ws_driver.user_key("$$ID-0123abcd-None") == ""  # a widget without key=
    assert ws_driver.user_key("") == ""


def test_elements_keep_label_key_options_and_types():
    metric = element("metric", label="Final training loss", body="0.3845")
    assert (metric.label, metric.text) == ("Final training loss", "0.3845")
    box = element("selectbox", id="$$ID-ab-train_heads", label="Attention heads",
                  options=["1", "2", "4", "8", "16"])
    assert (box.key, box.options, box.text) == ("train_heads", ("1", "2", "4", "8", "16"),
                                                "Attention heads")
    select_slider = element("slider", id="$$ID-ab-train_d_model", label="d_model",
                            options=["8", "128"], type=Slider.SELECT_SLIDER)
    assert select_slider.slider_type == Slider.SELECT_SLIDER
    epochs = element("number_input", id="$$ID-ab-train_epochs", label="Epochs",
                     data_type=NumberInput.INT, default=300)
    assert (epochs.key, epochs.data_type, epochs.value) == ("train_epochs", NumberInput.INT, 300)


def test_widget_states_are_what_the_browser_sends():
    box = element("selectbox", id="$$ID-a-train_corpus", options=["Cats", "Paste"])
    assert ws_driver.widget_state(box, "Paste").string_value == "Paste"
    radio = element("radio", id="$$ID-a-train_loss_on", options=["last (nb)", "every (GPT)"])
    assert ws_driver.widget_state(radio, "every (GPT)").string_value == "every (GPT)"
    select_slider = element("slider", id="$$ID-a-train_d_model", options=["8", "128"],
                            type=Slider.SELECT_SLIDER)
    assert list(ws_driver.widget_state(select_slider, "128").string_array_value.data) == ["128"]
    slider = element("slider", id="$$ID-a-train_block", type=Slider.SLIDER,
                     data_type=Slider.INT, min=1, max=16)
    assert list(ws_driver.widget_state(slider, 16).double_array_value.data) == [16.0]
    toggle = element("checkbox", id="$$ID-a-train_causal")
    assert ws_driver.widget_state(toggle, True).WhichOneof("value") == "bool_value"
    area = element("text_area", id="$$ID-a-train_text")
    assert ws_driver.widget_state(area, "a b\nc d").string_value == "a b\nc d"
    ints = element("number_input", id="$$ID-a-train_epochs", data_type=NumberInput.INT)
    assert ws_driver.widget_state(ints, 2000).WhichOneof("value") == "int_value"
    floats = element("number_input", id="$$ID-a-x", data_type=NumberInput.FLOAT)
    assert ws_driver.widget_state(floats, 0.5).double_value == 0.5
    with pytest.raises(ws_driver.StudentError, match="no option '32'"):
        ws_driver.widget_state(box, "32")
    with pytest.raises(ws_driver.StudentError, match="disabled"):
        ws_driver.widget_state(element("checkbox", id="$$ID-a-b", disabled=True), True)
    with pytest.raises(ws_driver.StudentError, match="True or False"):
        ws_driver.widget_state(toggle, "on")


def test_set_values_go_with_every_rerun_until_the_widget_leaves_the_page():
    student = ws_driver.WsStudent("http://127.0.0.1:1")
    start = ForwardMsg()
    start.metadata.run.script_run_id = "run-1"
    start.new_session.page_script_hash = "train-hash"
    student._handle(start)
    student._handle(delta([0, 0], "slider", id="$$ID-a-train_block", type=Slider.SLIDER))
    student._handle(delta([0, 1], "metric", label="Final training loss", body="0.3845"))
    page_info = ForwardMsg()
    page_info.page_info_changed.query_string = "train_block=16"
    student._handle(page_info)
    state = ws_driver.widget_state(student.widget("train_block"), 16)
    student.widget_values[state.id] = state
    assert student.metric("Final training loss") == "0.3845"
    sent = student._client_state(fragment_id="frag", is_auto_rerun=True)
    assert [w.id for w in sent.widget_states.widgets] == ["$$ID-a-train_block"]
    assert sent.query_string == "train_block=16"  # as the address bar holds it
    click = ws_driver.WidgetState(id="$$ID-b-train_go", trigger_value=True)
    sent = student._client_state([click])
    assert [w.id for w in sent.widget_states.widgets] == ["$$ID-a-train_block", "$$ID-b-train_go"]

    # The next full run draws no slider: its value is no longer sent (removeInactive).
    again = ForwardMsg()
    again.metadata.run.script_run_id = "run-2"
    again.new_session.page_script_hash = "train-hash"
    student._handle(again)
    student._handle(delta([0, 1], "metric", run_id="run-2", label="x", body="1"))
    finished = ForwardMsg()
    finished.metadata.run.script_run_id = "run-2"
    finished.script_finished = ForwardMsg.ScriptFinishedStatus.FINISHED_SUCCESSFULLY
    student._handle(finished)
    assert student.widget_values == {}
    assert student.metric("Final training loss") is None


def test_advice_steps_follow_the_refusal():
    assert ws_driver.advice_steps(REFUSAL) == [
        ("train_loss_on", ws_driver.LOSS_LAST), ("train_causal", False),
        ("train_d_model", "8"), ("train_heads", None), ("train_block", 7)]
    one = ("This run is too big for this server: x. To fit, lower d_model to 32, or lower the "
           "epochs to 1,000. A shorter corpus, or one with fewer different tokens, also helps.")
    assert ws_driver.advice_steps(one) == [("train_d_model", "32"), ("train_heads", None)]
    epochs = "x. To fit, change several settings: the block size 1, the epochs 1,000. Even"
    assert ws_driver.advice_steps(epochs) == [("train_block", 1), ("train_epochs", 1000)]
    assert ws_driver.advice_steps("This run is too big for this server: x. Even the smallest "
                                  "model is too big for this corpus: use a shorter one.") == []


def test_done_and_progress_numbers():
    assert ws_driver.done_numbers("Training done: 2,000 epochs in 85.3 s.") == (2000, 85.3)
    assert ws_driver.done_numbers("Epoch 3 of 300") is None
    assert ws_driver.progress_numbers("Epoch 120 of 2,000 · loss 5.1234") == (120, 2000)
    assert ws_driver.progress_numbers("") is None
    assert ws_driver.shorten("a  b " * 50, 20) == "a b a b a b a b a..."  # 20 characters
    assert ws_driver.shorten("a  b") == "a b"


def test_the_abusers_corpus_is_at_the_pages_limits_and_seeded():
    text = ws_driver.abuser_corpus()
    corpus = load_corpus(text)  # the page's own check: accepted
    assert MAX_CHARS - 100 <= len(text) <= MAX_CHARS
    assert len(set(corpus.words)) == MAX_VOCAB and len(corpus.lines) <= MAX_LINES
    assert ws_driver.abuser_corpus() == text != ws_driver.abuser_corpus(seed=8)


def test_exact_losses_counts_the_notebooks_figure():
    import load_test

    sessions = [load_test.Session(index=i, final_loss=v)
                for i, v in enumerate(["0.3845", "0.3845", "0.3846", None])]
    assert load_test.exact_losses(sessions) == (2, "0.3846 x1, none x1")


def run_in_thread(coroutine, timeout: float):
    # Its own thread: the browser tests' Playwright keeps an event loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=timeout)


def test_one_websocket_student_trains_and_generates(streamlit_server):
    result = ws_driver.Result(index=1)
    ready = ws_driver.Barrier(1, timeout=60)
    run_in_thread(ws_driver.student_flow(streamlit_server, result, ready, asyncio.Semaphore(1)),
                  300)
    assert result.status == "completed", result.reason
    assert result.train_seconds is not None and result.exceptions == 0
    assert result.fragment_requests > 0  # trained through the fragment's timer, as a browser does
    assert result.seed_after == result.seed_before + 1 and result.generated.strip()
    assert result.final_loss == "0.3845"  # the notebook's, read from the page's metric


def test_the_abuser_sets_the_largest_run_through_the_widgets_and_is_refused(streamlit_server):
    result = ws_driver.AbuserResult(index=1)
    ready = ws_driver.Barrier(1, timeout=60)
    run_in_thread(ws_driver.abuser_flow(streamlit_server, result, ready, asyncio.Semaphore(1),
                                        ws_driver.abuser_corpus()), 300)
    assert result.status == "completed", result.reason
    assert result.outcome.startswith("refused: This run is too big for this server")
    # The refusal says what to lower, or that even the smallest model is too big for this
    # corpus (5,000 different words over 5,000 windows: a full batch's scores alone).
    assert ("To fit" in result.refusal or "Even the smallest model" in result.refusal)
    assert result.exceptions == 0
    assert [key for key, _ in result.steps] == [key for key, _ in ws_driver.largest_run("")]
    assert "a vocabulary of 5001 ids" in result.page_facts  # the pasted text is what it trains on


def test_server_cpu_times_interpolate_the_samples():
    import load_test

    samples = [load_test.Sample(t=10.0 + i, phase="x", rss_mb=1, threads=1, cpu=2.0 * i)
               for i in range(5)]  # the server used 2 CPU-s every second
    assert load_test.cpu_at(samples, 11.5) == 3.0
    assert load_test.cpu_at(samples, 9.0) is None  # before the first sample
    assert load_test.server_cpu_times(samples, 10.5, [1.0, 2.5, 9.0]) == [2.0, 5.0]
    assert load_test.server_cpu_times(samples, None, [1.0]) == []


def test_cookies_and_the_answering_server_as_a_browser_keeps_them():
    jar = ws_driver.set_cookies(["minillm_route=minillm_r2; Path=/; Max-Age=43200; HttpOnly",
                                 "other=1"])
    assert jar == {"minillm_route": "minillm_r2", "other": "1"}
    assert ws_driver.cookie_header(jar) == "minillm_route=minillm_r2; other=1"
    # nginx's $upstream_addr lists every server it tried: the last one answered
    assert ws_driver.last_upstream("127.0.0.1:4001, 127.0.0.1:4002") == "127.0.0.1:4002"
    assert ws_driver.last_upstream("") == ""


def test_a_connection_the_server_closes_is_a_drop_and_one_this_client_closes_is_not():
    class Gone:  # a websocket whose server went away: iterating it ends at once
        def __aiter__(self):
            return self

        async def __anext__(self):
            raise StopAsyncIteration

        async def close(self):
            pass

    async def scenario(close_first: bool) -> ws_driver.WsStudent:
        student = ws_driver.WsStudent("http://127.0.0.1:1")
        student.ws = Gone()
        if close_first:
            await student.close()
        await student._read()
        return student

    def run(coroutine):  # in a thread of its own: an earlier test's kernel may leave this
        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # thread's event loop running
            return pool.submit(asyncio.run, coroutine).result()

    dropped = run(scenario(False))
    assert dropped.dropped and dropped.closed_reason == "closed by the server"
    assert not run(scenario(True)).dropped


def test_what_a_class_student_was_doing_when_its_replica_died():
    r = ws_driver.ClassResult(index=1)
    assert ws_driver.doing(r) == "opening" and not r.settled
    r.go_at = 1.0
    assert ws_driver.doing(r) == "training"
    r.train_seconds = 3.0
    assert ws_driver.doing(r) == "posting"
    r.run_ids.append(7)
    assert ws_driver.doing(r) == "done (posted)" and r.posted and r.settled
