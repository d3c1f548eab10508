"""Saved models: round trip, validation, and a malicious file that must run no code."""

from __future__ import annotations

import io
import os
import pickle

import pytest
import torch

from minillm.checkpoint import MAX_CHECKPOINT_BYTES, CheckpointError, load_checkpoint, save_checkpoint
from minillm.experiment import Experiment, TrainSettings
from minillm.sample import generate


@pytest.fixture(scope="module")
def trained():
    exp = Experiment(TrainSettings(epochs=40, eos=True))
    exp.trainer.run()
    return exp


def test_round_trip_keeps_weights_history_and_generations(trained):
    loaded = load_checkpoint(save_checkpoint(trained))
    assert loaded.settings == trained.settings
    assert loaded.trainer.history == trained.trainer.history
    for key, value in trained.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value)
    a = generate(trained.model, trained.dataset, "the cat", seed=1)
    b = generate(loaded.model, loaded.dataset, "the cat", seed=1)
    assert a.text == b.text


def test_a_loaded_model_continues_training_like_the_original(trained):
    original = Experiment(TrainSettings(epochs=40, eos=True))
    original.trainer.run(20)
    resumed = load_checkpoint(save_checkpoint(original))
    original.trainer.run(20)
    resumed.trainer.run(20)
    assert resumed.trainer.history == pytest.approx(original.trainer.history, abs=1e-6)


class Exploit:
    """A pickle that would create a file when unpickled with plain pickle."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


@pytest.mark.parametrize("via", ["torch.save", "pickle"])
def test_crafted_pickle_is_rejected_and_runs_no_code(tmp_path, via):
    marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    if via == "torch.save":
        torch.save({"format": "minillm-checkpoint-1", "x": Exploit(marker)}, buffer)
    else:
        pickle.dump(Exploit(marker), buffer)
    # Sanity: plain pickle really would run it (so the test can fail).
    if via == "pickle":
        pickle.loads(buffer.getvalue())
        assert marker.exists()
        marker.unlink()
    with pytest.raises(CheckpointError, match="not a MiniLLM model"):
        load_checkpoint(buffer.getvalue())
    assert not marker.exists()


def test_garbage_oversize_and_tampered_files_are_refused(trained):
    with pytest.raises(CheckpointError):
        load_checkpoint(b"hello, not a model")
    with pytest.raises(CheckpointError, match="larger"):
        load_checkpoint(b"0" * (MAX_CHECKPOINT_BYTES + 1))
    payload = torch.load(io.BytesIO(save_checkpoint(trained)), weights_only=True)
    payload["state_dict"]["lm_head.weight"] = torch.zeros(3, 3)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with pytest.raises(CheckpointError, match="weights do not fit"):
        load_checkpoint(buffer.getvalue())
    payload = torch.load(io.BytesIO(save_checkpoint(trained)), weights_only=True)
    payload["config"]["n_heads"] = 4
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with pytest.raises(CheckpointError, match="configuration"):
        load_checkpoint(buffer.getvalue())


def test_a_bpe_model_round_trips():
    from minillm.bpe import train_bpe

    bpe = train_bpe("\n".join(TrainSettings().lines), 20).encoding(20)
    exp = Experiment(TrainSettings(tokenizer="bpe", epochs=10), bpe=bpe)
    exp.trainer.run()
    loaded = load_checkpoint(save_checkpoint(exp))
    assert loaded.tokenizer.encode("the cat sat") == exp.tokenizer.encode("the cat sat")
    assert loaded.trainer.history == exp.trainer.history


def _per_parameter_optimizer(payload: dict, experiment: Experiment) -> dict:
    """The optimizer state as files saved before the weights were packed flat held it."""
    flat = payload["optimizer"]["state"][0]
    state, offset = {}, 0
    for i, p in enumerate(experiment.model.parameters()):
        part = slice(offset, offset + p.numel())
        state[i] = {
            "step": flat["step"].clone(),
            "exp_avg": flat["exp_avg"][part].reshape(p.shape).clone(),
            "exp_avg_sq": flat["exp_avg_sq"][part].reshape(p.shape).clone(),
        }
        offset += p.numel()
    group = {**payload["optimizer"]["param_groups"][0], "params": list(state)}
    return {"state": state, "param_groups": [group]}


def test_a_file_with_per_weight_optimizer_state_still_loads_and_continues():
    original = Experiment(TrainSettings(epochs=40))
    original.trainer.run(20)
    payload = torch.load(io.BytesIO(save_checkpoint(original)), weights_only=True)
    payload["optimizer"] = _per_parameter_optimizer(payload, original)
    old_file = io.BytesIO()
    torch.save(payload, old_file)
    resumed = load_checkpoint(old_file.getvalue())
    original.trainer.run(20)
    resumed.trainer.run(20)
    assert resumed.trainer.history == pytest.approx(original.trainer.history, abs=1e-6)


def test_optimizer_state_of_the_wrong_size_is_refused(trained):
    payload = torch.load(io.BytesIO(save_checkpoint(trained)), weights_only=True)
    entry = payload["optimizer"]["state"][0]
    entry["exp_avg"] = entry["exp_avg"][:-1]
    bad = io.BytesIO()
    torch.save(payload, bad)
    with pytest.raises(CheckpointError, match="optimizer"):
        load_checkpoint(bad.getvalue())
