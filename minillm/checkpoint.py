"""Saving a trained model to a file, and loading it back safely.

A checkpoint holds everything needed to continue: the settings (corpus included), the
tokenizer's vocabulary, the weights, the optimizer's state and the loss histories (training and
held out).

Loading a file someone hands you is dangerous with plain `pickle` (it can run any code).
We load with ``torch.load(weights_only=True)``, which only rebuilds plain data (tensors,
numbers, strings, lists, dicts) and refuses anything else. Plain data can still be costly or
broken, so a file is held to the same limits as the Train page's own settings:

- before anything is unpacked, the zip's declared sizes (a small compressed file can declare
  gigabytes);
- the settings: exact types, the page's ranges (`minillm.budget.settings_problems`) and the
  corpus limits of `minillm.corpus`;
- the BPE: only the text-splitting rules minillm makes (a crafted rule can run for minutes),
  the 256 single bytes first, at most as many pieces as the Build a BPE page makes;
- the cost: the model is rebuilt with the server's budgets (`minillm.budget`), so a run the
  server could not afford is refused before its model exists;
- the weights, the optimizer's averages and the loss history: shapes first, then finite.

Generated stories (`minillm.stories`) are saved as their recipe, not their text: the grammar's
knobs and how many sentences. Loading makes the same text again, so the held-out floor (each
line's nats under the grammar, `Experiment.line_nats`) and the grammar Generate parses with
come back with the model, and a corpus of thousands of generated sentences is not held to the
limits of a pasted one (it was made by the server from a few bounded numbers). A hash of the
lines checks that the recipe still makes exactly the text the model trained on.

Every refusal is a `CheckpointError` whose message is a plain sentence for the student.

    data = save_checkpoint(experiment)          # bytes, e.g. for a download button
    experiment = load_checkpoint(data)          # CheckpointError with a clear message if bad
    experiment = load_checkpoint(data, budgets=Budgets.from_env())   # a class server
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import math
import types
import typing
import zipfile
from dataclasses import asdict, fields

import tiktoken
import torch

from minillm.bpe import CL100K_PATTERN, WHOLE_TEXT_PATTERN
from minillm.budget import BudgetError, Budgets, settings_problems
from minillm.corpus import MAX_CHARS, MAX_LINES, CorpusError, load_corpus
from minillm.experiment import TOKENIZER_KINDS, Experiment, TrainSettings
from minillm.stories import StorySettings, generate_stories

FORMAT = "minillm-checkpoint-1"
MAX_CHECKPOINT_BYTES = 8_000_000  # what the uploader takes (maxUploadSize, .streamlit/config.toml):
# every model the default budgets allow must fit (tests/test_class_safety.py)
#: torch.save writes its members uncompressed, so a real checkpoint unpacks to about its own
#: size. A zip member may be compressed, though, and torch's reader sets aside each member's
#: declared size before unpacking it: a file of one megabyte can declare a gigabyte of zeros.
#: The sum of the declared sizes is checked first; twice the file limit leaves room for a file
#: someone zipped again, and bounds what any upload can make the server set aside.
MAX_UNPACKED_BYTES = 2 * MAX_CHECKPOINT_BYTES
#: The pickle (everything but the tensors: settings, corpus, BPE pieces, loss history) is read
#: by torch's safe unpickler, which is written in Python: its time grows with the pickle's
#: size. The largest the page makes (a full corpus of 4-byte characters and a BPE of long
#: pieces) is less than half of this.
MAX_PICKLE_BYTES = 1_000_000
#: The Build a BPE page makes at most this many merges (pages/build_bpe.py MAX_MERGES).
MAX_BPE_MERGES = 2_000
#: A BPE piece is a stretch of the text it was trained on: at most a corpus of MAX_CHARS
#: characters of up to 4 bytes each (UTF-8).
MAX_PIECE_BYTES = 4 * MAX_CHARS
#: The text-splitting rules minillm's BPE uses (minillm.bpe); any other is refused unrun.
SPLIT_PATTERNS = (CL100K_PATTERN, WHOLE_TEXT_PATTERN)
MAX_NAME_CHARS = 255  # a corpus is named after its file: most systems allow 255 characters
#: The most sentences of generated stories a file may ask for: the Train page's slider
#: (ui/train_settings.py SENTENCES), so that making them again on load stays quick.
MAX_STORY_SENTENCES = 20_000

# The settings in words, for refusals (the Train page's labels).
SETTING_WORDS = {
    "lines": "corpus", "corpus_name": "corpus name", "tokenizer": "tokenizer",
    "block_size": "block size", "d_model": "d_model", "n_heads": "number of heads",
    "lr": "learning rate", "epochs": "epochs", "seed": "seed", "eos": "EOS token",
    "loss_on": "loss setting (Loss on)", "causal": "causal mask", "n_layers": "number of layers",
    "batch_size": "batch size", "valid_share": "held-out share",
}
KINDS = {int: "a whole number", float: "a number", bool: "on or off", str: "text"}


class CheckpointError(ValueError):
    """The file is not a MiniLLM model we can use; the message says why."""


def _bpe_payload(encoding: tiktoken.Encoding) -> dict:
    ranks = sorted(encoding._mergeable_ranks.items(), key=lambda kv: kv[1])
    return {
        "name": encoding.name,
        "pat_str": encoding._pat_str,
        "pieces": [base64.b64encode(piece).decode("ascii") for piece, _ in ranks],
    }


def _lines_hash(lines) -> str:
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def _story_recipe(experiment: Experiment) -> dict | None:
    """How to make the experiment's lines again, when they are generated stories."""
    story, nats, lines = experiment.story_settings, experiment.line_nats, experiment.settings.lines
    if story is None or nats is None or len(nats) != len(lines):
        return None
    sentences = sum(line.split(" ").count(".") for line in lines)  # each ends in " ."
    if not 1 <= sentences <= MAX_STORY_SENTENCES:
        return None
    knobs = {name: float(value) if typing.get_type_hints(StorySettings)[name] is float else value
             for name, value in asdict(story).items()}  # a rate given as 0 is still a number
    return {"settings": knobs, "sentences": sentences, "sha256": _lines_hash(lines)}


def save_checkpoint(experiment: Experiment) -> bytes:
    """The experiment as bytes (a torch file of plain data only)."""
    settings = asdict(experiment.settings)
    story = _story_recipe(experiment)
    settings["lines"] = [] if story else list(settings["lines"])  # stories: made again on load
    payload = {
        "format": FORMAT,
        "settings": settings,
        "config": experiment.model.config.to_dict(),
        "vocab_size": experiment.dataset.vocab_size,
        "bpe": _bpe_payload(experiment.bpe) if experiment.bpe is not None else None,
        "state_dict": experiment.model.state_dict(),
        "optimizer": experiment.trainer.optimizer.state_dict(),
        "history": list(experiment.trainer.history),
        "valid_history": [[epoch, loss] for epoch, loss in experiment.trainer.valid_history],
        "story": story,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckpointError(message)


def _part(parent: dict, key: str, words: str):
    _check(key in parent, f"The file is missing its {words}.")
    return parent[key]


def _check_archive(data: bytes) -> None:
    """Refuse a file that is not a torch zip, or that would unpack to more than a model needs,
    from the zip's directory alone: nothing is unpacked here."""
    not_ours = "That file is not a MiniLLM model."
    too_big = ("That file would unpack to {:,.0f} MB; a MiniLLM model never needs more than "
               f"{MAX_UNPACKED_BYTES // 1_000_000} MB, so it is refused without unpacking it.")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            declared = sum(member.file_size for member in archive.infolist())
    except Exception as error:  # any way of not being a zip: the directory could not be read
        raise CheckpointError(not_ours) from error
    _check(declared <= MAX_UNPACKED_BYTES, too_big.format(declared / 1e6))
    # torch.load unpacks with its own zip reader, not Python's: ask it for the sizes too, so a
    # file that the two readers see differently cannot slip through.
    try:
        reader = torch._C.PyTorchFileReader(io.BytesIO(data))
        sizes = {name: reader.get_record_size(name) for name in reader.get_all_records()}
    except Exception as error:
        raise CheckpointError(not_ours) from error
    _check(sum(sizes.values()) <= MAX_UNPACKED_BYTES, too_big.format(sum(sizes.values()) / 1e6))
    _check(sizes.get("data.pkl", 0) <= MAX_PICKLE_BYTES,
           f"That file holds more than {MAX_PICKLE_BYTES // 1_000_000} MB of settings and text; "
           "a MiniLLM model holds much less, so it is refused without reading it.")


def _fits(value, hint) -> bool:
    """`value` has exactly the type `hint` (True is not a whole number here, 5.0 is not one)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_fits(value, option) for option in typing.get_args(hint))
    if hint is type(None):
        return value is None
    return type(value) is hint


def _corpus(lines) -> tuple[str, ...]:
    """The corpus's lines, held to the limits of a pasted corpus (minillm.corpus)."""
    _check(isinstance(lines, list) and all(type(line) is str for line in lines),
           "The model's corpus is damaged: it should be a list of sentences.")
    _check(len(lines) > 0, "The model's corpus is empty.")
    # load_corpus checks a text, but joining first could cost gigabytes (a pickle can repeat
    # one long line a million times at the cost of a few bytes each): count before joining.
    _check(len(lines) <= MAX_LINES,
           f"The model's corpus has {len(lines):,} lines; the limit is {MAX_LINES:,}.")
    chars = sum(map(len, lines)) + len(lines) - 1
    _check(chars <= MAX_CHARS,
           f"The model's corpus has {chars:,} characters; the limit is {MAX_CHARS:,}.")
    try:
        corpus = load_corpus("\n".join(lines))
    except CorpusError as error:
        raise CheckpointError(f"The model's corpus cannot be used. {error}") from error
    _check(corpus.lines == tuple(lines),
           "The model's corpus is not as MiniLLM saves it: it has blank lines, line breaks "
           "inside a sentence, extra spaces or invisible control characters.")
    return corpus.lines


#: Settings added after files were first saved, and what a file without them meant.
ADDED_SETTINGS = {"n_layers": 1, "batch_size": 0, "valid_share": 0.0}


def _story(raw):
    """The generated stories a file names: (lines, each line's nats, the grammar's knobs), made
    again from the recipe and checked against its hash; None for a corpus saved as text."""
    if raw is None:
        return None
    damaged = "The model's story settings are damaged."
    _check(isinstance(raw, dict) and set(raw) == {"settings", "sentences", "sha256"}, damaged)
    knobs, sentences = raw["settings"], raw["sentences"]
    hints = typing.get_type_hints(StorySettings)
    _check(isinstance(knobs, dict) and set(knobs) == set(hints)
           and all(_fits(knobs[name], hint) for name, hint in hints.items()), damaged)
    _check(type(sentences) is int and 1 <= sentences <= MAX_STORY_SENTENCES,
           f"The model's stories should have from 1 to {MAX_STORY_SENTENCES:,} sentences.")
    try:
        story = StorySettings(**knobs)
    except ValueError as error:
        raise CheckpointError(f"The model's story settings are outside the grammar's: {error}.") from error
    lines, nats = generate_stories(story, sentences).by_story()
    _check(type(raw["sha256"]) is str and raw["sha256"] == _lines_hash(lines),
           "The model's story settings do not make the corpus it was trained on.")
    return lines, nats, story


def _settings(raw, generated: tuple[str, ...] | None = None) -> TrainSettings:
    """The file's settings, checked. `generated`: the lines of generated stories, made again
    by the server (the file then holds no lines, and the pasted-corpus limits do not apply)."""
    _check(isinstance(raw, dict), "The model's settings are damaged.")
    raw = {**{k: v for k, v in ADDED_SETTINGS.items() if k not in raw}, **raw}
    hints = typing.get_type_hints(TrainSettings)
    names = [f.name for f in fields(TrainSettings)]
    missing = [SETTING_WORDS.get(name, name.replace("_", " ")) for name in names if name not in raw]
    _check(not missing, f"The model's settings are incomplete: no value for the {', the '.join(missing)}.")
    _check(set(raw) == set(names), "The model's settings include some that MiniLLM does not have.")
    wrong = [f"the {SETTING_WORDS.get(name, name.replace('_', ' '))} should be "
             f"{KINDS.get(hints[name], 'something else')}"
             for name in names if name != "lines" and not _fits(raw[name], hints[name])]
    _check(not wrong, f"The model's settings are damaged: {'; '.join(wrong)}.")
    if generated is None:
        lines = _corpus(raw["lines"])
    else:
        _check(raw["lines"] == [], "The model's corpus is both saved and generated.")
        lines = generated
    settings = TrainSettings(**{**raw, "lines": lines})
    problems = settings_problems(settings)
    if settings.tokenizer not in TOKENIZER_KINDS:
        problems.append(f"the tokenizer is not one of {', '.join(TOKENIZER_KINDS)}")
    _check(not problems, "The model's settings are outside what the Train page offers: "
                         f"{'; '.join(problems)}.")
    _check(len(settings.corpus_name) <= MAX_NAME_CHARS,
           f"The model's corpus name is longer than {MAX_NAME_CHARS} characters.")
    return settings


def _bpe(raw, tokenizer: str) -> tiktoken.Encoding | None:
    if raw is None:
        _check(tokenizer != "bpe", "The model uses a BPE tokenizer, but the file has no BPE vocabulary.")
        return None
    damaged = "The file's BPE vocabulary is damaged."
    _check(isinstance(raw, dict) and {"name", "pat_str", "pieces"} <= set(raw),
           "The file's BPE vocabulary is incomplete.")
    name, pat_str, pieces = raw["name"], raw["pat_str"], raw["pieces"]
    _check(type(name) is str and len(name) <= MAX_NAME_CHARS,
           f"The file's BPE has a damaged name (text of at most {MAX_NAME_CHARS} characters).")
    _check(type(pat_str) is str and pat_str in SPLIT_PATTERNS,
           "The file's BPE cuts text with a rule MiniLLM never makes. It is refused without "
           "being tried: a crafted rule can keep the server busy for minutes.")
    most = 256 + MAX_BPE_MERGES
    _check(isinstance(pieces, list) and 256 <= len(pieces) <= most,
           f"The file's BPE vocabulary should have from 256 to {most:,} pieces.")
    _check(all(type(piece) is str for piece in pieces), damaged)
    try:
        decoded = [base64.b64decode(piece, validate=True) for piece in pieces]
    except (binascii.Error, ValueError) as error:
        raise CheckpointError(damaged) from error
    # tiktoken needs every single byte as a piece: a text with a missing one crashes it.
    _check(all(decoded[i] == bytes([i]) for i in range(256)),
           "The file's BPE vocabulary does not start with the 256 single bytes, so some text "
           "could not be encoded.")
    _check(len(set(decoded)) == len(decoded), "The file's BPE vocabulary has a piece twice.")
    _check(all(piece for piece in decoded), damaged)
    _check(all(len(piece) <= MAX_PIECE_BYTES for piece in decoded),
           f"The file's BPE vocabulary has a piece longer than {MAX_PIECE_BYTES:,} bytes.")
    return tiktoken.Encoding(name=name, pat_str=pat_str, special_tokens={},
                             mergeable_ranks={piece: rank for rank, piece in enumerate(decoded)})


def _build(settings: TrainSettings, bpe, budgets: Budgets | None, story=None) -> Experiment:
    line_nats, story_settings = (story[1], story[2]) if story else (None, None)
    try:
        return Experiment(settings, bpe=bpe, budgets=budgets, device="cpu", line_nats=line_nats,
                          story_settings=story_settings)
    except BudgetError as error:  # already a plain sentence: what is too big, what to lower
        raise CheckpointError(str(error)) from error
    except ValueError as error:  # the engine's own sentences, e.g. a corpus with no pairs
        raise CheckpointError(f"The model cannot be rebuilt from its settings: {error}.") from error
    except Exception as error:
        raise CheckpointError("The model cannot be rebuilt from its settings.") from error


def _tensor(value, shape, dtype=torch.float32) -> bool:
    """An ordinary tensor in memory of this shape and type (shapes are checked before any
    values are read: a stretched tensor can claim billions of numbers over one)."""
    return (isinstance(value, torch.Tensor) and value.layout == torch.strided
            and value.device.type == "cpu" and value.dtype == dtype and value.shape == shape)


def _optimizer(raw, experiment: Experiment) -> dict:
    """AdamW's saved state, checked, with this run's own settings (learning rate and the rest):
    only the averages and the step count come from the file."""
    incomplete = "The model's optimizer state is incomplete."
    misfit = "The model's optimizer state does not fit its weights."
    _check(isinstance(raw, dict) and {"state", "param_groups"} <= set(raw), incomplete)
    groups, entries = raw["param_groups"], raw["state"]
    _check(isinstance(groups, list) and len(groups) == 1 and isinstance(groups[0], dict)
           and isinstance(groups[0].get("params"), list)
           and all(type(i) is int for i in groups[0]["params"]), misfit)
    ids = groups[0]["params"]
    shapes = [p.shape for p in experiment.model.parameters()]
    layouts = {  # one flat tensor (the fast path), or one entry per weight (the plain loop)
        1: [torch.Size([sum(s.numel() for s in shapes)])],
        len(shapes): shapes,
    }
    layout = layouts.get(len(ids))
    _check(layout is not None and ids == list(range(len(ids))), misfit)
    _check(isinstance(entries, dict) and all(type(k) is int and k in ids for k in entries), misfit)
    for k, entry in entries.items():
        _check(isinstance(entry, dict) and set(entry) == {"step", "exp_avg", "exp_avg_sq"}, incomplete)
        _check(_tensor(entry["exp_avg"], layout[k]) and _tensor(entry["exp_avg_sq"], layout[k])
               and _tensor(entry["step"], torch.Size([])), misfit)
    for entry in entries.values():
        step = float(entry["step"])
        _check(math.isfinite(step) and step >= 0 and step.is_integer(),
               "The model's optimizer state has a damaged step count.")
        _check(bool(torch.isfinite(entry["exp_avg"]).all() and torch.isfinite(entry["exp_avg_sq"]).all()),
               "The model's optimizer state contains NaN or infinity.")
        _check(bool((entry["exp_avg_sq"] >= 0).all()),
               "The model's optimizer state has a negative average of squares, but a square is "
               "never negative.")
    own = experiment.trainer.optimizer.state_dict()["param_groups"][0]
    hyper = {key: value for key, value in own.items() if key != "params"}
    return {"state": entries, "param_groups": [{**hyper, "params": ids}]}


def load_checkpoint(data: bytes, budgets: Budgets | None = None) -> Experiment:
    """An `Experiment` from checkpoint bytes, ready to generate or to train further.

    With `budgets` (a class server passes ``Budgets.from_env()``) a model whose run would cost
    more than they allow is refused; without, only the page's ranges and limits apply.
    """
    _check(len(data) <= MAX_CHECKPOINT_BYTES, f"That file is larger than {MAX_CHECKPOINT_BYTES // 1_000_000} MB: not a MiniLLM model.")
    _check_archive(data)
    try:
        payload = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as exc:  # any refusal by the safe loader: not our kind of file
        raise CheckpointError(
            "That file is not a MiniLLM model (or it contains something other than plain "
            "data, which is refused for safety)."
        ) from exc
    _check(isinstance(payload, dict) and type(payload.get("format")) is str
           and payload["format"] == FORMAT, "That file is not a MiniLLM model.")
    story = _story(payload.get("story"))  # files saved before stories have none
    settings = _settings(_part(payload, "settings", "settings"), story[0] if story else None)
    bpe = _bpe(_part(payload, "bpe", "BPE vocabulary"), settings.tokenizer)
    experiment = _build(settings, bpe, budgets, story)

    config = _part(payload, "config", "configuration")
    expected = experiment.model.config.to_dict()
    if isinstance(config, dict) and "n_layers" not in config:  # saved before deeper models
        config = {**config, "n_layers": 1}
    _check(isinstance(config, dict) and set(config) == set(expected)
           and all(type(config[k]) is type(v) and config[k] == v for k, v in expected.items()),
           "The model's configuration does not match its settings.")
    vocab_size = _part(payload, "vocab_size", "vocabulary size")
    _check(type(vocab_size) is int and vocab_size == experiment.dataset.vocab_size,
           "The model's vocabulary does not match its corpus.")

    state = _part(payload, "state_dict", "weights")
    own = experiment.model.state_dict()
    _check(isinstance(state, dict) and set(state) == set(own)
           and all(_tensor(state[k], own[k].shape, own[k].dtype) for k in own),
           "The model's weights do not fit its configuration.")
    _check(all(torch.isfinite(t).all() for t in state.values()), "The model's weights contain NaN or infinity.")

    history = _part(payload, "history", "loss history")
    _check(isinstance(history, list) and all(type(v) is float and math.isfinite(v) for v in history),
           "The model's loss history is damaged.")
    _check(len(history) <= settings.epochs, "The model's loss history is longer than its epochs.")
    valid_history = _valid_history(payload.get("valid_history", []), len(history))
    optimizer = _optimizer(_part(payload, "optimizer", "optimizer state"), experiment)

    experiment.model.load_state_dict(state)
    try:
        experiment.trainer.load_optimizer_state(optimizer)
    except Exception as exc:
        raise CheckpointError("The model's optimizer state does not fit its weights.") from exc
    experiment.trainer.history = list(history)
    experiment.trainer.valid_history = valid_history
    return experiment


def _valid_history(pairs, epochs: int) -> list[tuple[int, float]]:
    """The held-out checks, as (epoch, loss): epochs rising, none past the training history, each
    loss a finite number (a file saved before held-out text has none: an empty list)."""
    _check(isinstance(pairs, list)
           and all(isinstance(p, list) and len(p) == 2 and type(p[0]) is int
                   and type(p[1]) is float and math.isfinite(p[1]) for p in pairs),
           "The model's held-out history is damaged.")
    rising = [epoch for epoch, _ in pairs]
    _check(len(pairs) <= epochs + 1 and rising == sorted(set(rising))
           and all(0 <= e <= epochs for e in rising),
           "The model's held-out history does not fit its training history.")
    return [(epoch, loss) for epoch, loss in pairs]
