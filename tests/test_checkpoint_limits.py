"""Crafted model files: each is refused with a plain sentence, at once, before it costs memory.

A model file comes from a student's computer, so anything in it may have been edited. Each test
starts from a real saved model (or a real torch file), changes what an attacker would change,
and checks that `load_checkpoint` refuses it with a sentence a student can read (no Python key
names, no exception text), quickly, and without the memory the file asks for. Peak memory is
Linux's VmHWM, started again from the current size just before each load.
"""

from __future__ import annotations

import base64
import collections
import functools
import io
import math
import pickle
import re
import struct
import time
import zlib
from pathlib import Path

import pytest
import torch

from minillm.bpe import train_bpe
from minillm.budget import BudgetError, Budgets
from minillm.checkpoint import (
    FORMAT, MAX_BPE_MERGES, MAX_PIECE_BYTES, MAX_UNPACKED_BYTES, CheckpointError,
    load_checkpoint, save_checkpoint,
)
from minillm.corpus import MAX_CHARS, MAX_LINES, MAX_VOCAB
from minillm.experiment import Experiment, TrainSettings
from test_checkpoint import _per_parameter_optimizer

FAST_SECONDS = 1.0  # a refusal is quicker than this, even on a busy two-core server
SMALL_MB = 50  # and grows the process's peak memory by less than this
GIB = 1 << 30

# What a refusal must not show: the file's key names, quoted or raw, and Python's own words.
KEY_NAMES = {
    "format", "settings", "config", "vocab_size", "bpe", "name", "pat_str", "pieces",
    "state_dict", "optimizer", "state", "param_groups", "params", "step", "exp_avg",
    "exp_avg_sq", "history", "lines", "corpus_name", "tokenizer", "block_size", "d_model",
    "n_heads", "lr", "epochs", "seed", "eos", "loss_on", "causal",
}
RAW_NAMES = re.compile(r"\b(vocab_size|pat_str|state_dict|param_groups|exp_avg\w*|corpus_name"
                       r"|block_size|n_heads|loss_on)\b")
PYTHON_TEXT = re.compile(r"Error|Exception|Traceback|tensor\(|torch\.|<class|\bNone\b|[{}\n]")


def assert_plain(message: str) -> None:
    assert message[:1].isupper() and message.endswith("."), message
    assert not PYTHON_TEXT.search(message), message
    assert not set(re.findall(r"'(\w+)'", message)) & KEY_NAMES, message
    assert not RAW_NAMES.search(message), message


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def refuse(data: bytes, **kw) -> str:
    """load_checkpoint(data) raises CheckpointError, plainly, fast and small: its message."""
    try:  # Linux: "5" starts the peak (VmHWM) again from the current size
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pytest.skip("measuring peak memory needs Linux's /proc/self/clear_refs")
    before = _status_kb("VmRSS")
    start = time.perf_counter()
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(data, **kw)
    seconds = time.perf_counter() - start
    grown_mb = (_status_kb("VmHWM") - before) / 1024
    message = str(caught.value)
    assert_plain(message)
    assert seconds < FAST_SECONDS, (seconds, message)
    assert grown_mb < SMALL_MB, (grown_mb, message)
    return message


def as_file(payload) -> bytes:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def b64(piece: bytes) -> str:
    return base64.b64encode(piece).decode("ascii")


@pytest.fixture(scope="module")
def saved() -> bytes:
    exp = Experiment(TrainSettings(epochs=20, eos=True))
    exp.trainer.run()
    return save_checkpoint(exp)


@pytest.fixture(scope="module")
def saved_bpe() -> bytes:
    bpe = train_bpe("\n".join(TrainSettings().lines), 20).encoding(20)
    exp = Experiment(TrainSettings(tokenizer="bpe", epochs=10), bpe=bpe)
    exp.trainer.run()
    return save_checkpoint(exp)


@pytest.fixture
def payload(saved):
    """A fresh copy of the saved model's contents, to edit."""
    return torch.load(io.BytesIO(saved), weights_only=True)


@pytest.fixture
def bpe_payload(saved_bpe):
    return torch.load(io.BytesIO(saved_bpe), weights_only=True)


def test_the_unedited_files_load_with_and_without_a_budget(saved, saved_bpe):
    """So every refusal below comes from the one thing each test changes."""
    for data in (saved, saved_bpe):
        assert load_checkpoint(data).trainer.history
        assert load_checkpoint(data, budgets=Budgets()).trainer.history


# --- settings: the Train page's ranges, exact types, the corpus limits ----------------------


def test_a_huge_block_size_is_refused_before_anything_is_built(payload):
    payload["settings"]["block_size"] = payload["config"]["block_size"] = 60_000
    message = refuse(as_file(payload))
    assert "block size" in message and "60000" in message


@pytest.mark.parametrize("field, value, words", [
    ("epochs", 10**9, "epochs"),
    ("d_model", 1, "d_model"),
    ("n_heads", 3, "heads"),
    ("block_size", 0, "block size"),
    ("seed", -1, "seed"),
    ("lr", 0.5, "learning rate"),
    ("lr", math.nan, "learning rate"),
    ("loss_on", "all", "loss on"),
    ("tokenizer", "sentencepiece", "tokenizer"),
    ("n_layers", 9, "layers"),
    ("batch_size", 10**9, "batch size"),
    ("valid_share", 0.99, "held-out share"),
])
def test_settings_outside_the_pages_ranges_are_refused(payload, field, value, words):
    payload["settings"][field] = value
    assert words.lower() in refuse(as_file(payload)).lower()


@pytest.mark.parametrize("field, value, words", [
    ("block_size", "5", "block size"),
    ("block_size", True, "block size"),
    ("block_size", 5.0, "block size"),
    ("d_model", 32.0, "d_model"),
    ("n_heads", "2", "heads"),
    ("epochs", 20.0, "epochs"),
    ("seed", False, "seed"),
    ("lr", "0.001", "learning rate"),
    ("eos", 1, "EOS"),
    ("causal", "no", "causal"),
    ("loss_on", 0, "loss on"),
    ("tokenizer", None, "tokenizer"),
    ("corpus_name", 7, "corpus name"),
    ("n_layers", 1.0, "layers"),
    ("batch_size", True, "batch size"),
    ("valid_share", "0.1", "held-out share"),
])
def test_settings_of_the_wrong_type_are_refused(payload, field, value, words):
    payload["settings"][field] = value
    assert words.lower() in refuse(as_file(payload)).lower()


def test_missing_or_unknown_settings_are_refused(payload):
    del payload["settings"]["epochs"]
    assert "epochs" in refuse(as_file(payload))
    payload["settings"]["epochs"], payload["settings"]["evil"] = 20, 1
    assert "settings" in refuse(as_file(payload))


@pytest.mark.parametrize("lines", [
    "the cat sat on the mat",
    [1, 2],
    ["the cat sat", None],
    {"the cat": 1},
    [],
], ids=["a string", "numbers", "a None", "a dict", "empty"])
def test_a_corpus_that_is_not_a_list_of_sentences_is_refused(payload, lines):
    payload["settings"]["lines"] = lines
    assert "corpus" in refuse(as_file(payload))


@pytest.mark.parametrize("lines, words", [
    (["the cat sat"] * (MAX_LINES + 1), f"{MAX_LINES:,}"),
    (["the cat " * (MAX_CHARS // 8 + 1)], f"{MAX_CHARS:,}"),
    ([" ".join(f"w{i}" for i in range(MAX_VOCAB + 1))], f"{MAX_VOCAB:,}"),
    # one 40,000-character line 3,000 times: small as a file (pickle stores it once), 120
    # million characters once joined, so the limits must be checked before any joining
    (["x " * 20_000] * 3_000, f"{MAX_LINES:,}"),
    (["the  cat sat", "the dog sat"], "corpus"),
    (["the cat sat\non the mat"], "corpus"),
    (["the cat sat", ""], "corpus"),
], ids=["lines", "characters", "words", "one line many times", "spaces", "newline", "blank"])
def test_a_corpus_over_the_limits_or_not_as_saved_is_refused(payload, lines, words):
    payload["settings"]["lines"] = lines
    message = refuse(as_file(payload))
    assert "corpus" in message and words in message


def test_a_very_long_corpus_name_is_refused(payload):
    payload["settings"]["corpus_name"] = "x" * 100_000
    assert "name" in refuse(as_file(payload))


# --- the server's budget -----------------------------------------------------------------------


def test_an_over_budget_model_is_refused_with_the_budgets_sentence(saved, payload):
    tight = Budgets(run_seconds=1e-6)
    settings = TrainSettings(**{**payload["settings"], "lines": tuple(payload["settings"]["lines"])})
    with pytest.raises(BudgetError) as expected:
        Experiment(settings, budgets=tight)
    assert refuse(saved, budgets=tight) == str(expected.value)


def test_the_budget_comes_from_the_servers_environment(saved, monkeypatch):
    monkeypatch.setenv("MINILLM_KEPT_MB", "0.001")
    assert "too big for this server" in refuse(saved, budgets=Budgets.from_env())
    monkeypatch.delenv("MINILLM_KEPT_MB")
    assert load_checkpoint(saved, budgets=Budgets.from_env()).trainer.history


# --- the zip file: declared sizes are checked before anything is unpacked ---------------------


class _Storage:
    def __init__(self, key: str, numel: int):
        self.key, self.numel = key, numel


class _Tensor:
    """Pickles as torch pickles a float tensor over storage `key`, without any memory."""

    def __init__(self, storage: _Storage):
        self.storage = storage

    def __reduce_ex__(self, protocol):
        return (torch._utils._rebuild_tensor_v2,
                (self.storage, 0, (self.storage.numel,), (1,), False, collections.OrderedDict()))


class _TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):  # how torch.save names a storage kept in its own zip member
        if isinstance(obj, _Storage):
            return ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel)
        return None


def _member(name: str, body: bytes, crc: int, size: int, method: int):
    return name, body, crc, size, method


def _stored(name: str, data: bytes):
    return _member(name, data, zlib.crc32(data), len(data), 0)


@functools.lru_cache(maxsize=2)
def _deflated_zeros(name: str, n_bytes: int, chunk: int = 16 << 20):
    """A zip member of `n_bytes` zero bytes, deflated, made without holding them all.

    After a full flush the compressor starts afresh, so every further chunk of zeros
    compresses to the same bytes: two chunks are compressed and the second repeated.
    """
    assert n_bytes % chunk == 0 and n_bytes >= 2 * chunk
    zeros, compressor = bytes(chunk), zlib.compressobj(9, zlib.DEFLATED, -15)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    body = first + again * (n_bytes // chunk - 1) + compressor.flush()
    crc = 0
    for _ in range(n_bytes // chunk):
        crc = zlib.crc32(zeros, crc)
    return _member(name, body, crc, n_bytes, 8)


def _zip(members) -> bytes:
    """A zip archive written by hand, so that a member's declared size can be anything."""
    out, central = io.BytesIO(), []
    for name, body, crc, size, method in members:
        offset, raw = out.tell(), name.encode()
        out.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0, crc, len(body),
                              size, len(raw), 0) + raw + body)
        central.append(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0, crc,
                                   len(body), size, len(raw), 0, 0, 0, 0, 0, offset) + raw)
    directory = b"".join(central)
    start = out.tell()
    out.write(directory + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members),
                                      len(members), len(directory), start, 0))
    return out.getvalue()


def _torch_zip(n_bytes: int, declared: int | None = None) -> bytes:
    """A torch file of one float tensor of `n_bytes` zeros, stored deflated."""
    obj = {"format": FORMAT, "state_dict": {"token_embedding.weight": _Tensor(_Storage("0", n_bytes // 4))}}
    pickled = io.BytesIO()
    _TorchPickler(pickled, protocol=2).dump(obj)
    name, body, crc, size, method = _deflated_zeros("archive/data/0", n_bytes)
    data = _member(name, body, crc, size if declared is None else declared, method)
    return _zip([_stored("archive/data.pkl", pickled.getvalue()), _stored("archive/byteorder", b"little"),
                 data, _stored("archive/version", b"3\n")])


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return _torch_zip(GIB)


def test_the_bomb_maker_makes_a_file_torch_really_unpacks():
    """Same recipe, 32 MB: torch.load gives back every zero, so the 1 GB file is a real one."""
    data = _torch_zip(32 << 20)
    tensor = torch.load(io.BytesIO(data), weights_only=True)["state_dict"]["token_embedding.weight"]
    assert tensor.shape == (8 << 20,) and not tensor.any()
    assert len(data) < (32 << 20) / 500


def test_a_compression_bomb_is_refused_before_it_is_unpacked(bomb):
    assert len(bomb) < 1.5e6 and GIB > 50 * MAX_UNPACKED_BYTES
    message = refuse(bomb)
    assert "MB" in message and "unpack" in message


def test_a_member_that_inflates_past_its_declared_size_is_refused():
    """The declared size passes the check; torch's reader stops at it and refuses the file."""
    message = refuse(_torch_zip(GIB, declared=1024))
    assert "not a MiniLLM model" in message


def test_a_file_that_is_not_a_zip_is_refused(saved):
    assert "not a MiniLLM model" in refuse(pickle.dumps({"format": FORMAT}))
    assert "not a MiniLLM model" in refuse(saved[: len(saved) // 2])


# --- the BPE: only the splitting rules minillm makes, and a sane vocabulary ---------------------

# Lookahead makes tiktoken's regex engine backtrack: on the notebook's sentences each encoding
# tries 2^18 ways per position, so building the model's dataset would take seconds of CPU.
SLOW_PATTERN = r"(?:[\w ]|[\w ]){1,18}(?=\d)|[\s\S]"


def test_a_bpe_with_a_crafted_splitting_rule_is_refused_without_running_it(bpe_payload):
    bpe_payload["bpe"]["pat_str"] = SLOW_PATTERN
    assert "BPE" in refuse(as_file(bpe_payload))


def _missing_byte(pieces):
    pieces[ord("a")] = b64(b"zz")  # tiktoken panics on a text with an "a" in it


def _duplicate(pieces):
    pieces[-1] = pieces[-2]


def _too_many(pieces):
    pieces.extend(b64(f"~{i}~".encode()) for i in range(MAX_BPE_MERGES + 1))


def _too_long(pieces):
    pieces.append(b64(b"ab" * (MAX_PIECE_BYTES // 2 + 1)))


def _not_base64(pieces):
    pieces[-1] = "%%% not base64 %%%"


def _not_text(pieces):
    pieces[-1] = 5


def _single_byte_merge(pieces):
    pieces.append(b64(b"\x00"))


@pytest.mark.parametrize("damage", [_missing_byte, _duplicate, _too_many, _too_long, _not_base64,
                                    _not_text, _single_byte_merge])
def test_a_damaged_bpe_vocabulary_is_refused(bpe_payload, damage):
    damage(bpe_payload["bpe"]["pieces"])
    assert "BPE" in refuse(as_file(bpe_payload))


@pytest.mark.parametrize("edit", [
    lambda bpe: bpe.pop("pieces"),
    lambda bpe: bpe.update(pieces="abc"),
    lambda bpe: bpe.update(name="x" * 100_000),
    lambda bpe: bpe.update(name=3),
], ids=["no pieces", "pieces a string", "long name", "name a number"])
def test_a_bpe_with_missing_or_wrong_parts_is_refused(bpe_payload, edit):
    edit(bpe_payload["bpe"])
    assert "BPE" in refuse(as_file(bpe_payload))


@pytest.mark.parametrize("bpe", [None, "cl100k_base"])
def test_a_bpe_model_without_a_bpe_vocabulary_is_refused(bpe_payload, bpe):
    bpe_payload["bpe"] = bpe
    assert "BPE" in refuse(as_file(bpe_payload))


# --- weights, loss history, optimizer state ---------------------------------------------------


def _entry(payload) -> dict:
    return payload["optimizer"]["state"][0]


@pytest.mark.parametrize("edit", [
    lambda e: e["exp_avg"].__setitem__(0, math.nan),
    lambda e: e["exp_avg_sq"].__setitem__(3, math.inf),
    lambda e: e["exp_avg_sq"].__setitem__(3, -1.0),  # a running square is never negative
    lambda e: e.update(step=torch.tensor(math.nan)),
    lambda e: e.update(step=torch.tensor(-1.0)),
    lambda e: e.update(step=torch.tensor(2.5)),
    lambda e: e.update(step=20.0),
    lambda e: e.update(step=torch.ones(3)),
    lambda e: e.update(exp_avg=e["exp_avg"].double()),
    lambda e: e.update(exp_avg=torch.zeros(1).expand(10**9)),
    lambda e: e.pop("exp_avg_sq"),
], ids=["NaN", "infinity", "negative square", "NaN step", "negative step", "half step",
        "step not a tensor", "step not one number", "64-bit", "stretched", "missing average"])
def test_a_damaged_optimizer_state_is_refused(payload, edit):
    edit(_entry(payload))
    assert "optimizer" in refuse(as_file(payload))


def test_a_stretched_tensor_in_a_per_weight_optimizer_state_is_refused_unread(payload):
    """A zero-stride tensor is tiny in the file; joining the per-weight parts would copy it."""
    experiment = load_checkpoint(as_file(payload))
    payload["optimizer"] = _per_parameter_optimizer(payload, experiment)
    payload["optimizer"]["state"][0]["exp_avg"] = torch.zeros(1).expand(10**8)
    assert "optimizer" in refuse(as_file(payload))


@pytest.mark.parametrize("edit", [
    lambda o: o.pop("state"),
    lambda o: o.pop("param_groups"),
    lambda o: o.update(param_groups=[]),
    lambda o: o.update(state={0: "x"}),
    lambda o: o.update(state={7: o["state"][0]}),
], ids=["no state", "no groups", "empty groups", "entry not a dict", "entry for no weight"])
def test_an_optimizer_state_with_missing_or_wrong_parts_is_refused(payload, edit):
    edit(payload["optimizer"])
    assert "optimizer" in refuse(as_file(payload))


def test_the_files_optimizer_hyperparameters_are_not_used(payload):
    """The learning rate is a setting (checked against the page's choices): a different one
    hidden in the optimizer's state, or a switch such as maximize, is ignored."""
    group = payload["optimizer"]["param_groups"][0]
    group.update(lr=1e9, maximize=True, weight_decay=1e9)
    loaded = load_checkpoint(as_file(payload))
    own = loaded.trainer.optimizer.param_groups[0]
    assert own["lr"] == loaded.settings.lr and not own["maximize"] and own["weight_decay"] < 1


def _head(payload) -> torch.Tensor:
    return payload["state_dict"]["lm_head.weight"]


@pytest.mark.parametrize("edit, words", [
    (lambda p: p["history"].append(1.0), "loss history"),  # longer than its epochs
    (lambda p: p["history"].__setitem__(0, math.nan), "loss history"),
    (lambda p: p["history"].__setitem__(0, "1.0"), "loss history"),
    (lambda p: p.update(history=[1.0] * 50_000), "loss history"),
    (lambda p: p["state_dict"].update({"lm_head.weight": _head(p).double()}), "weights"),
    (lambda p: p["state_dict"].update({"lm_head.weight": torch.zeros(1).expand(10**9)}), "weights"),
    (lambda p: p["state_dict"]["lm_head.weight"].__setitem__((0, 0), math.nan), "weights"),
    (lambda p: p.update(vocab_size=torch.tensor([15, 15])), "vocabulary"),
    (lambda p: p["config"].update(d_model=torch.tensor([32, 32])), "configuration"),
], ids=["long history", "NaN loss", "text loss", "many losses", "64-bit weights",
        "stretched weights", "NaN weight", "vocabulary a tensor", "config a tensor"])
def test_damaged_weights_history_and_sizes_are_refused(payload, edit, words):
    edit(payload)
    assert words in refuse(as_file(payload))


# --- a missing part is named in words ---------------------------------------------------------


@pytest.mark.parametrize("key, words", [
    ("settings", "settings"),
    ("config", "configuration"),
    ("vocab_size", "vocabulary"),
    ("bpe", "BPE"),
    ("state_dict", "weights"),
    ("optimizer", "optimizer"),
    ("history", "loss history"),
])
def test_a_file_missing_a_part_says_which_in_words(payload, key, words):
    del payload[key]
    message = refuse(as_file(payload))
    assert "missing" in message and words in message


@pytest.mark.parametrize("payload_value", [[1, 2, 3], {"settings": {}}, {"format": 1}])
def test_a_file_that_is_not_a_minillm_payload_is_refused(payload_value):
    assert "not a MiniLLM model" in refuse(as_file(payload_value))
