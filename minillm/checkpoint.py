"""Saving a trained model to a file, and loading it back safely.

A checkpoint holds everything needed to continue: the settings (corpus included), the
tokenizer's vocabulary, the weights, the optimizer's state and the loss history.

Loading a file someone hands you is dangerous with plain `pickle` (it can run any code).
We load with ``torch.load(weights_only=True)``, which only rebuilds plain data (tensors,
numbers, strings, lists, dicts) and refuses anything else, then check every part against the
configuration before using it.

    data = save_checkpoint(experiment)          # bytes, e.g. for a download button
    experiment = load_checkpoint(data)          # CheckpointError with a clear message if bad
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import asdict, fields

import tiktoken
import torch

from minillm.experiment import Experiment, TrainSettings

FORMAT = "minillm-checkpoint-1"
MAX_CHECKPOINT_BYTES = 5_000_000  # the largest model the Train page can make is ~2 MB


class CheckpointError(ValueError):
    """The file is not a MiniLLM model we can use; the message says why."""


def _bpe_payload(encoding: tiktoken.Encoding) -> dict:
    ranks = sorted(encoding._mergeable_ranks.items(), key=lambda kv: kv[1])
    return {
        "name": encoding.name,
        "pat_str": encoding._pat_str,
        "pieces": [base64.b64encode(piece).decode("ascii") for piece, _ in ranks],
    }


def _bpe_from_payload(payload: dict) -> tiktoken.Encoding:
    pieces = [base64.b64decode(p) for p in payload["pieces"]]
    return tiktoken.Encoding(
        name=str(payload["name"]),
        pat_str=str(payload["pat_str"]),
        mergeable_ranks={piece: rank for rank, piece in enumerate(pieces)},
        special_tokens={},
    )


def save_checkpoint(experiment: Experiment) -> bytes:
    """The experiment as bytes (a torch file of plain data only)."""
    settings = asdict(experiment.settings)
    settings["lines"] = list(settings["lines"])
    payload = {
        "format": FORMAT,
        "settings": settings,
        "config": experiment.model.config.to_dict(),
        "vocab_size": experiment.dataset.vocab_size,
        "bpe": _bpe_payload(experiment.bpe) if experiment.bpe is not None else None,
        "state_dict": experiment.model.state_dict(),
        "optimizer": experiment.trainer.optimizer.state_dict(),
        "history": list(experiment.trainer.history),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckpointError(message)


def load_checkpoint(data: bytes) -> Experiment:
    """An `Experiment` from checkpoint bytes, ready to generate or to train further."""
    _check(len(data) <= MAX_CHECKPOINT_BYTES, f"That file is larger than {MAX_CHECKPOINT_BYTES // 1_000_000} MB: not a MiniLLM model.")
    try:
        payload = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as exc:  # any refusal by the safe loader: not our kind of file
        raise CheckpointError(
            "That file is not a MiniLLM model (or it contains something other than plain "
            "data, which is refused for safety)."
        ) from exc
    _check(isinstance(payload, dict) and payload.get("format") == FORMAT, "That file is not a MiniLLM model.")
    try:
        names = {f.name for f in fields(TrainSettings)}
        raw = payload["settings"]
        _check(isinstance(raw, dict) and set(raw) == names, "The model's settings are incomplete.")
        settings = TrainSettings(**{**raw, "lines": tuple(str(line) for line in raw["lines"])})
        bpe = _bpe_from_payload(payload["bpe"]) if payload["bpe"] is not None else None
        experiment = Experiment(settings, bpe=bpe)
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(f"The model's settings cannot be used: {exc}") from exc
    expected = experiment.model.config.to_dict()
    _check(payload["config"] == expected, "The model's configuration does not match its settings.")
    _check(payload["vocab_size"] == experiment.dataset.vocab_size, "The model's vocabulary does not match its corpus.")
    state = payload["state_dict"]
    own = experiment.model.state_dict()
    _check(
        isinstance(state, dict)
        and set(state) == set(own)
        and all(isinstance(state[k], torch.Tensor) and state[k].shape == own[k].shape for k in own),
        "The model's weights do not fit its configuration.",
    )
    _check(all(torch.isfinite(t).all() for t in state.values()), "The model's weights contain NaN or infinity.")
    experiment.model.load_state_dict(state)
    history = payload["history"]
    _check(
        isinstance(history, list) and all(isinstance(v, float) and math.isfinite(v) for v in history),
        "The model's loss history is damaged.",
    )
    try:
        experiment.trainer.load_optimizer_state(payload["optimizer"])
    except Exception as exc:
        raise CheckpointError("The model's optimizer state does not fit its weights.") from exc
    experiment.trainer.history = list(history)
    experiment.trainer.epochs = max(experiment.trainer.epochs, len(history))
    return experiment

