"""Train page: download the model, upload it again; a bad or malicious file changes nothing."""

from __future__ import annotations

import io
import os

import pytest
import torch

from conftest import app_test
from minillm.checkpoint import load_checkpoint, save_checkpoint
from minillm.experiment import Experiment, TrainSettings
from ui.plain_text import plain


def run(at):
    at.run()
    assert not at.exception, at.exception
    return at


def texts(elements):
    return "\n".join(str(element.value) for element in elements)


@pytest.fixture(scope="module")
def saved():
    exp = Experiment(TrainSettings(epochs=30, eos=True))
    exp.trainer.run()
    return exp, save_checkpoint(exp)


def test_upload_a_saved_model_then_download_it_again(saved):
    original, data = saved
    at = run(app_test("pages/train.py"))
    assert "Train a model first to download it." in texts(at.caption)
    at.file_uploader(key="model_upload").upload("mine.pt", data, "application/octet-stream")
    run(at)
    assert "this is now your model" in texts(at.success)
    loaded = at.session_state["experiment"]
    assert loaded.trainer.history == original.trainer.history and loaded.settings.eos
    # the download button now offers the model, and its bytes load back to the same weights
    button = at.get("download_button")[0]
    assert button.proto.label == "Download this model"
    again = load_checkpoint(save_checkpoint(loaded))
    assert torch.equal(again.model.lm_head.weight, original.model.lm_head.weight)


class Exploit:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_a_crafted_file_is_refused_and_the_model_kept(saved, tmp_path):
    _, data = saved
    at = run(app_test("pages/train.py"))
    at.file_uploader(key="model_upload").upload("good.pt", data, "application/octet-stream")
    run(at)
    kept = at.session_state["experiment"]
    marker = tmp_path / "pwned"
    evil = io.BytesIO()
    torch.save({"format": "minillm-checkpoint-1", "boom": Exploit(marker)}, evil)
    at.file_uploader(key="model_upload").upload("evil.pt", evil.getvalue(), "application/octet-stream")
    run(at)
    assert f"{plain('evil.pt')}: That file is not a MiniLLM model" in texts(at.error)
    assert "Your current model is unchanged." in texts(at.error)
    assert at.session_state["experiment"] is kept
    assert not marker.exists()


def upload(at, name, data):
    at.file_uploader(key="model_upload").upload(name, data, "application/octet-stream")
    return run(at)


def test_a_file_without_settings_is_refused_in_words_and_its_name_shown_as_typed(saved):
    _, data = saved
    payload = torch.load(io.BytesIO(data), weights_only=True)
    del payload["settings"]
    bad = io.BytesIO()
    torch.save(payload, bad)
    name = "**mine** [see](javascript:alert(1)).pt"
    at = upload(run(app_test("pages/train.py")), name, bad.getvalue())
    error = texts(at.error)
    assert f"{plain(name)}: The file is missing its settings. Your current model is unchanged." in error
    assert "'settings'" not in error and "**mine**" not in error


def test_the_servers_budget_applies_to_an_uploaded_model(saved, monkeypatch):
    original, data = saved
    at = upload(run(app_test("pages/train.py")), "good.pt", data)
    kept = at.session_state["experiment"]
    monkeypatch.setenv("MINILLM_KEPT_MB", "0.001")  # this server keeps almost nothing per student
    upload(at, "again.pt", data)
    error = texts(at.error)
    assert f"{plain('again.pt')}: This run is too big for this server" in error
    assert "Your current model is unchanged." in error
    assert at.session_state["experiment"] is kept
