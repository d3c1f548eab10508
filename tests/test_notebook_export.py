"""Take it home: each page's "Open as a notebook" file runs and gives the page's numbers.

Each test drives a page with AppTest, takes the notebook its button would download (the very
callable Streamlit runs on a click: `downloads` records it), checks that it is a valid
notebook with no Streamlit and no bare tiktoken download in it, then runs it with nbclient in
an in-process ipykernel kernel (no sockets at all) with the network refused and an empty
encoding cache, and compares what the notebook computed (its last cell's ``figures``) with
what the page showed (kept exactly in the notebook's metadata). Floats agree to 1e-6 (the
runs are the same, so in practice they are equal); ids and text exactly.

In-process kernel notes (ipykernel 7.4, nbclient 0.11): its manager and client need two
keyword arguments nbclient passes (`now`, `timeout`), and its stdout does not reach nbclient
(prints are lost), which is why the figures come back as the value of an added last cell.
"""

from __future__ import annotations

import ast
import json
import math
import os
import socket
import threading
from functools import partial

os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # debugpy's note on frozen modules

import nbformat  # noqa: E402
import pytest  # noqa: E402
from ipykernel.inprocess.blocking import BlockingInProcessKernelClient  # noqa: E402
from ipykernel.inprocess.manager import InProcessKernelManager  # noqa: E402
from nbclient import NotebookClient  # noqa: E402
from nbformat.v4 import new_code_cell  # noqa: E402
from streamlit.runtime.media_file_manager import MediaFileManager  # noqa: E402
from traitlets.config import Config  # noqa: E402

from conftest import app_test, page_with, trained_experiment  # noqa: E402
from minillm import notebook, tokenizers  # noqa: E402
from minillm.experiment import Experiment, TrainSettings  # noqa: E402
from ui import model_state  # noqa: E402
from ui.train_widgets import fmt  # noqa: E402

CELL_TIMEOUT = 300  # seconds; the Compare notebook indexes 100,000 words


# --------------------------------------------------------------------------------------------
# Running a notebook


class _Client(BlockingInProcessKernelClient):
    def wait_for_ready(self, timeout=None):  # nbclient passes a timeout; in-process is ready
        return super().wait_for_ready()


class _Manager(InProcessKernelManager):
    def shutdown_kernel(self, now=False, restart=False):
        self._end_iopub_gc_task()
        return super().shutdown_kernel()

    def _end_iopub_gc_task(self):
        """Cancel the IOPub thread's clean-up task while its loop still runs. ipykernel's own
        stop() cancels it after the loop has stopped, so the task never ends and Python
        prints "Task was destroyed but it is pending!" for every notebook at exit."""
        iopub = getattr(self.kernel, "iopub_thread", None)
        task = getattr(iopub, "_event_pipe_gc_task", None)
        if task is None or not iopub.thread.is_alive():
            return
        ended = threading.Event()

        def cancel():
            task.add_done_callback(lambda _: ended.set())
            task.cancel()

        iopub.io_loop.add_callback(cancel)
        ended.wait(timeout=10)

    def client(self, **kwargs):
        kwargs.update(kernel=self.kernel, session=self.session)
        return _Client(parent=self, **kwargs)


def run_notebook(nb) -> dict:
    """Execute a copy of `nb` in-process; return its `figures` (any error fails the test)."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    nb.cells.insert(0, new_code_cell("%reset -f"))  # one shell for the whole process: start clean
    nb.cells.append(new_code_cell(f"import json as _json\n_json.dumps({notebook.FIGURES})"))
    # No IPython history: it would write to ~/.ipython, and at exit from the wrong thread
    # (sqlite3.ProgrammingError after the test run).
    km = _Manager(config=Config({"HistoryManager": {"enabled": False}}))
    try:
        NotebookClient(nb, km=km, timeout=CELL_TIMEOUT).execute()
    finally:  # nbclient leaves a manager it was given running
        km.shutdown_kernel()
    (result,) = [o for o in nb.cells[-1].outputs if o["output_type"] == "execute_result"]
    return json.loads(ast.literal_eval(result["data"]["text/plain"]))


def assert_same(app, here, where="figures"):
    """The app's figure and the notebook's: floats to 1e-6, everything else exactly."""
    if isinstance(app, dict):
        assert isinstance(here, dict) and set(app) <= set(here), (where, app, here)
        for key in app:
            assert_same(app[key], here[key], f"{where}[{key!r}]")
    elif isinstance(app, list):
        assert isinstance(here, list) and len(app) == len(here), (where, app, here)
        for n, (a, h) in enumerate(zip(app, here)):
            assert_same(a, h, f"{where}[{n}]")
    elif isinstance(app, float) and not isinstance(here, bool):
        assert math.isclose(app, here, rel_tol=0, abs_tol=1e-6), (where, app, here)
    else:
        assert app == here, (where, app, here)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network, and an empty encoding cache: cl100k_base must come through minillm."""
    def refuse(*args, **kwargs):
        raise OSError("no network in this test")

    def local_only(real):  # a Unix socket stays on the machine (the training workers use one)
        def connect(self, address, *args, **kwargs):
            if self.family == socket.AF_UNIX:
                return real(self, address, *args, **kwargs)
            return refuse()
        return connect

    monkeypatch.setattr(socket.socket, "connect", local_only(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "connect_ex", local_only(socket.socket.connect_ex))
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("MINILLM_CACHE_DIR", str(tmp_path / "encodings"))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tiktoken"))
    monkeypatch.setattr(tokenizers, "_loaded", {})


@pytest.fixture
def downloads(monkeypatch):
    """The deferred download callables the pages register, by file name."""
    recorded = {}
    register = MediaFileManager.add_deferred

    def spy(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        recorded[file_name] = (data_callable, mimetype)
        return register(self, data_callable, mimetype, coordinates, file_name=file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", spy)
    return recorded


def exported(at, downloads, page: str):
    """The notebook the page's button downloads, checked for what every notebook must be."""
    button = at.download_button(key=f"notebook_{page}")
    assert button.proto.label == "Open as a notebook" and not button.proto.disabled
    data_callable, mime = downloads[notebook.notebook_file_name(page)]
    assert mime == "application/x-ipynb+json"
    nb = nbformat.reads(data_callable().decode("utf-8"), as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["minillm"]["page"] == page
    assert "pip install ." in nb.cells[0].source  # the first cell says how to install minillm
    code = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    assert "streamlit" not in code and "get_encoding" not in code
    assert "import minillm" in code or "from minillm" in code
    return nb


@pytest.fixture
def fast_chunks(monkeypatch):
    monkeypatch.setattr(model_state, "CHUNK_SECONDS", 2.0)
    monkeypatch.setattr(model_state, "CHUNK_MAX_EPOCHS", 400)


# --------------------------------------------------------------------------------------------
# One page each


def test_train_notebook_reproduces_the_final_loss_of_the_pages_run(downloads, offline, fast_chunks):
    at = app_test("pages/train.py").run()
    assert not at.exception
    at.button(key="train_go").click().run()
    for _ in range(50):
        assert not at.exception, at.exception
        if at.session_state["experiment"].trainer.done:
            break
        at.run()
    experiment = at.session_state["experiment"]
    assert experiment.trainer.done and experiment.settings == TrainSettings()
    nb = exported(at, downloads, "train")
    app = notebook.figures_of(nb)
    shown = {m.label: m.value for m in at.metric}
    assert shown["Final training loss"] == fmt(app["loss"]) == "0.3845"
    assert shown["Loss floor"] == f"{app['floor']:.4f}" == "0.3839"
    assert "seconds" not in app  # a run's time is not something a notebook can reproduce
    assert 'lines = PRESETS["Cats and dogs (the notebook)"]' in nb.cells[2].source.replace("'", '"')
    here = run_notebook(nb)
    assert abs(here["loss"] - experiment.summary()["loss"]) < 1e-6  # the acceptance figure
    assert_same(app, here)


def test_train_notebook_before_any_run_has_the_next_runs_settings_and_floor(downloads, offline):
    at = app_test("pages/train.py")
    at.session_state["train_epochs"] = 60
    at.run()
    assert not at.exception
    nb = exported(at, downloads, "train")
    assert nb.metadata["minillm"]["settings"]["epochs"] == 60
    app = notebook.figures_of(nb)
    assert set(app) == {"floor", "windows", "vocab_size"} and round(app["floor"], 4) == 0.3839
    assert_same(app, run_notebook(nb))


def test_a_bpe_run_rebuilds_its_bpe_from_the_pieces_and_gives_the_same_numbers(offline):
    from minillm.bpe import train_bpe

    encoding = train_bpe("the cat sat on the mat\nthe dog sat on the rug", 40).encoding()
    experiment = Experiment(TrainSettings(tokenizer="bpe", epochs=60, eos=True), bpe=encoding)
    experiment.trainer.run()
    nb = notebook.train_notebook(experiment.settings, bpe=encoding,
                                 trained_epochs=experiment.trainer.epoch,
                                 figures=experiment.summary())
    assert "new_pieces = [" in "\n".join(c.source for c in nb.cells)
    assert_same(notebook.figures_of(nb), run_notebook(nb))


def test_generate_notebook_writes_the_same_text(downloads, offline):
    at = page_with("pages/generate.py", trained_experiment())
    at.text_input(key="generate_prompt").set_value("the dog").run()
    at.number_input(key="generate_seed").set_value(7).run()
    assert not at.exception
    nb = exported(at, downloads, "generate")
    app = notebook.figures_of(nb)
    assert app["text"].startswith("the dog ") and len(app["ids"]) == 15
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    chart = at.get("vega_lite_chart")[0]  # the wide form (its phone twin has the same rows)
    bars = convert_arrow_bytes_to_pandas_df(chart.proto.datasets[0].data.data)
    assert bars[bars["picked"]].sort_values("step")["token_id"].tolist() == app["ids"]
    assert_same(app, run_notebook(nb))


def test_attention_notebook_gives_the_same_weights(downloads, offline):
    at = page_with("pages/attention.py", trained_experiment(epochs=100))
    nb = exported(at, downloads, "attention")
    app = notebook.figures_of(nb)
    assert app["labels"] == ["the", "cat", "sat", "on", "the"] and app["epoch"] == 100
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    first_head = at.get("vega_lite_chart")[0].proto
    rows = convert_arrow_bytes_to_pandas_df(first_head.datasets[0].data.data)
    drawn = rows.sort_values(["position", "looks_at"])["weight"].tolist()
    assert drawn == pytest.approx([w for row in app["weights"][0] for w in row], abs=1e-6)
    assert_same(app, run_notebook(nb))


def test_attention_notebook_for_a_typed_context_at_an_earlier_epoch(downloads, offline):
    experiment = trained_experiment(epochs=100)
    at = page_with("pages/attention.py", experiment)
    at.segmented_control(key="attention_source").set_value("Type a context").run()
    at.text_input(key="attention_text").set_value("the dog chased the").run()
    at.select_slider(key="attention_epoch").set_value(50).run()
    assert not at.exception
    nb = exported(at, downloads, "attention")
    app = notebook.figures_of(nb)
    assert app["epoch"] == 50 and app["labels"] == ["PAD", "the", "dog", "chased", "the"]
    assert_same(app, run_notebook(nb))


def test_compare_notebook_gives_the_same_ids(downloads, offline):
    at = app_test("pages/compare.py").run()
    assert not at.exception
    nb = exported(at, downloads, "compare")
    app = notebook.figures_of(nb)
    table = at.table[0].value
    assert dict(zip(table["Tokenizer"], table["Tokens"])) == app["tokens"]
    assert app["ids"]["cl100k_base"][:4] == [40, 1097, 4477, 420]  # "I am writing this"
    assert_same(app, run_notebook(nb))


def test_build_bpe_notebook_gives_the_same_ids(downloads, offline):
    at = app_test("pages/build_bpe.py")
    at.session_state["bpe_merges"] = 60
    at.run()
    at.select_slider(key="bpe_step").set_value(25).run()
    assert not at.exception
    nb = exported(at, downloads, "build_bpe")
    app = notebook.figures_of(nb)
    assert app["vocab_size"] == 256 + 25 and app["latest_merge"][2] == 256 + 24
    assert any(c.value.startswith(f"{len(app['ids']):,} tokens for") for c in at.caption)
    assert "text = preset(" in "\n".join(c.source for c in nb.cells)  # the preset, by name
    assert_same(app, run_notebook(nb))


def test_which_tokens_notebook_gives_every_entrants_score(downloads, offline, monkeypatch):
    """The tokenizer experiment on a small pasted text: the notebook trains the same seven
    models and gets the same held-out bits per character, vocabularies and verdict."""
    from test_page_which_tokens import TINY
    from ui import tournament_jobs as jobs

    monkeypatch.setenv("MINILLM_WORKERS", "0")  # train in this process
    at = app_test("pages/which_tokens.py").run()
    before = exported(at, downloads, "which_tokens")  # before a run: the code, no figures
    assert notebook.figures_of(before) == {} and "T.story_corpus(stories)" in before.cells[2].source
    at.selectbox(key="tok_corpus").select("Paste your own sentences").run()
    at.text_area(key="tok_text").input(TINY).run()
    at.button(key="tok_run").click().run()
    assert jobs.registry().wait_idle(600)
    at.run()
    assert not at.exception, at.exception
    nb = exported(at, downloads, "which_tokens")
    app = notebook.figures_of(nb)
    table = at.dataframe[0].value
    assert app["heldout_bits"] == dict(zip(table["tokenizer"], table["held-out bits per character"]))
    from ui.plain_text import plain

    assert next(m for m in (e.value for e in at.markdown) if m.startswith("#### ")) == \
        "#### " + plain(app["verdict"])
    assert_same(app, run_notebook(nb))


# --------------------------------------------------------------------------------------------
# The command line and settings strings


def test_python_m_minillm_notebook_writes_a_notebook_for_a_settings_string(tmp_path, capsys):
    from minillm.__main__ import main

    out = tmp_path / "train.ipynb"
    assert main(["notebook", "train", "epochs=300,seed=42", "-o", str(out)]) == 0
    nb = nbformat.read(out, as_version=4)
    nbformat.validate(nb)
    settings = nb.metadata["minillm"]["settings"]
    assert settings["epochs"] == 300 and settings["seed"] == 42 and nb.metadata["minillm"]["figures"] == {}
    assert main(["notebook", "train", "epoch=300"]) == 2
    assert "unknown setting 'epoch'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = capsys.readouterr().out
    assert all(command in help_text for command in ("fetch-encodings", "stories", "notebook"))


@pytest.mark.parametrize("page, text, expected", [
    ("generate", 'prompt="the cat, the dog",top_k=3,greedy=on,sample_seed=5,epochs=50',
     {"prompt": "the cat, the dog", "top_k": 3, "greedy": True, "sample_seed": 5, "epochs": 50}),
    ("attention", "typed=the cat,epoch=0,corpus=Country-style lines (original)",
     {"typed": "the cat", "epoch": 0, "corpus_name": "Country-style lines (original)"}),
    ("compare", "text='bookkeepers keep books',n_words=1000,piece=2363",
     {"text": "bookkeepers keep books", "n_words": 1000, "piece": 2363}),
    ("build_bpe", "merges=10", None),
    ("build_bpe", "num_merges=10,split=off", None),
    ("build_bpe", "num_merges=10,regex_split=off,step=3",
     {"num_merges": 10, "regex_split": False, "step": 3}),
    ("which_tokens", "new_names=0.5,typos=0.1,budget=full,size=tiny",
     {"text": None, "new_names": 0.5, "typos": 0.1, "budget": "full", "size": "tiny"}),
    ("which_tokens", "corpus_name=Cats and dogs (the notebook)",
     {"corpus_name": "Cats and dogs (the notebook)"}),
    ("which_tokens", "size=huge,typo=1", None),
])
def test_settings_strings(page, text, expected):
    if expected is None:
        with pytest.raises(ValueError, match="unknown setting"):
            notebook.from_settings(page, text)
        return
    settings = notebook.from_settings(page, text).metadata["minillm"]["settings"]
    assert {k: settings[k] for k in expected} == expected


def test_the_stories_command_prints_seeded_stories(capsys):
    from minillm.__main__ import main

    assert main(["stories", "--sentences", "5", "--seed", "3"]) == 0
    out = capsys.readouterr()
    assert out.out.splitlines()[0] == "once there was a girl named lena ."
    assert len(out.out.splitlines()) == 5 and "bits per character" in out.err


def test_the_notebook_module_is_registered_for_every_page_with_a_button():
    """Each page that calls notebook_button has a builder (the next page adds one too)."""
    from pathlib import Path
    import re

    root = Path(__file__).resolve().parents[1]
    called = {m.group(1) for path in [*root.glob("pages/*.py"), *root.glob("ui/*.py")]
              for m in re.finditer(r'notebook_button\("(\w+)"', path.read_text())}
    assert called == {"train", "generate", "attention", "compare", "build_bpe", "which_tokens"}
    assert called <= set(notebook.PAGES)


def test_partial_binds_the_values_when_the_page_runs():
    """What the button's callable needs: plain values bound at once, rebuilt on each call."""
    build = partial(notebook.build_bpe_notebook, "aaabdaaabac", corpus_name=None, num_merges=3)
    first, second = notebook.to_bytes(build()), notebook.to_bytes(build())
    assert first == second and b"aaabdaaabac" in first


def test_attention_notebook_of_a_deeper_models_second_layer(offline):
    from minillm import inspect

    experiment = trained_experiment(epochs=30, n_layers=2)
    context = experiment.dataset.X[4].tolist()
    labels, weights = inspect.attention_maps(experiment.model, experiment.dataset, context, 1)
    nb = notebook.attention_notebook(experiment.settings, trained_epochs=30, context=context,
                                     layer=1, figures={"labels": labels, "weights": weights.tolist()})
    assert_same(notebook.figures_of(nb), run_notebook(nb))
