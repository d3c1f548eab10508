"""The engine against exact answers: the notebook's numbers, tiktoken itself, by-hand counts."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import pytest
import tiktoken
import torch

from minillm import tokenizers
from minillm.corpus import CATS_AND_DOGS, COUNTRY_STYLE, CorpusError, load_corpus, load_upload
from minillm.data import IGNORE, build_dataset, conditional_entropy, loss_floor
from minillm.experiment import Experiment, TrainSettings
from minillm.model import ModelConfig, build_model, head_choices
from minillm.sample import copied_spans, generate
from minillm.tokenizers import (
    ByteTokenizer,
    CharTokenizer,
    EncodingUnavailable,
    TiktokenTokenizer,
    UnknownTokensError,
    WordTokenizer,
    load_encoding,
    token_pieces,
)
from minillm.train import Trainer, final_loss, honest_loss

NOTEBOOK_VOCAB = [
    "at", "ball", "barked", "cat", "chased", "dog", "mailman",
    "mat", "mouse", "on", "rug", "sat", "slept", "the",
]  # fmt: skip
NOTEBOOK_SENTENCES = [
    "I am writing this to demonstrate how a BPE encoder works",
    "I am writing this to demonstrate how a BPE encoder works!",
    "bookkeepers keep the books for bookies who do the booking for bookers",
]


@pytest.fixture(scope="module")
def notebook_run():
    """The notebook's run: 300 full-batch epochs, seed 42 (about a second)."""
    exp = Experiment(TrainSettings())
    exp.trainer.run()
    return exp


# ---- tokenizers ---------------------------------------------------------------------------


def test_word_tokenizer_is_the_notebooks_vocabulary():
    tok = WordTokenizer.fit(CATS_AND_DOGS)
    assert tok.vocab == NOTEBOOK_VOCAB
    assert tok.encode("the cat sat") == [13, 3, 11]
    assert tok.decode([13, 5, 2]) == "the dog barked"


def test_unknown_words_are_reported_not_dropped():
    tok = WordTokenizer.fit(CATS_AND_DOGS)
    assert tok.encode_known("the zebra sat on the zebra sofa").unknown == ["zebra", "sofa"]
    with pytest.raises(UnknownTokensError, match="zebra"):
        tok.encode("the zebra")


@pytest.mark.parametrize("text", ["", "héllo wörld", "👋🏽 日本語", "e\u0301", "a\n\tb  c"])
def test_byte_and_char_round_trip(text):
    assert ByteTokenizer().decode(ByteTokenizer().encode(text)) == text
    chars = CharTokenizer.fit([text])
    assert chars.decode(chars.encode(text)) == text


def test_cl100k_offline_equals_tiktoken_on_notebook_sentences(tmp_path, monkeypatch):
    """Engine ids equal tiktoken's own cl100k_base (built here straight from the bundled file)."""
    monkeypatch.setenv("MINILLM_CACHE_DIR", str(tmp_path))  # an empty cache: nothing downloaded
    monkeypatch.setattr(tokenizers, "_loaded", {})
    from tiktoken.load import load_tiktoken_bpe

    bundled = tokenizers.bundled_cl100k_path()
    reference = tiktoken.Encoding(
        name="reference",
        pat_str=r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
        mergeable_ranks=load_tiktoken_bpe(str(bundled), expected_hash=tokenizers.ENCODING_FILES["cl100k_base"][0][1]),
        special_tokens={},
    )
    enc = load_encoding("cl100k_base")
    assert enc.name == "cl100k_base"
    for sentence in NOTEBOOK_SENTENCES:
        assert enc.encode(sentence) == reference.encode(sentence)
    assert enc.encode(NOTEBOOK_SENTENCES[0]) == [40, 1097, 4477, 420, 311, 20461, 1268, 264, 426, 1777, 24592, 4375]
    assert (tmp_path / hashlib.sha1(tokenizers.ENCODING_FILES["cl100k_base"][0][0].encode()).hexdigest()).exists()


def test_encoding_table_matches_tiktoken_source():
    """Our addresses and hashes are tiktoken's own (they are its cache keys)."""
    import tiktoken_ext.openai_public as official

    source = Path(official.__file__).read_text()
    for files in tokenizers.ENCODING_FILES.values():
        for url, sha in files:
            assert url in source and sha in source


def test_damaged_cache_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("MINILLM_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tokenizers, "_loaded", {})
    url, _ = tokenizers.ENCODING_FILES["o200k_base"][0]
    tokenizers.cache_path(url).write_bytes(b"not the real file")
    with pytest.raises(EncodingUnavailable, match="damaged"):
        load_encoding("o200k_base")


def test_missing_encoding_says_how_to_fetch(tmp_path, monkeypatch):
    monkeypatch.setenv("MINILLM_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tokenizers, "_loaded", {})
    with pytest.raises(EncodingUnavailable, match=r"'gpt2'.*python -m minillm.fetch_encodings"):
        load_encoding("gpt2")
    assert not tokenizers.is_available("gpt2")
    assert tokenizers.is_available("cl100k_base")


def test_fetch_refuses_a_file_with_the_wrong_hash(tmp_path, monkeypatch):
    from minillm import fetch_encodings

    monkeypatch.setenv("MINILLM_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(fetch_encodings, "read_file", lambda url: b"tampered")
    with pytest.raises(RuntimeError, match="sha256"):
        fetch_encodings.fetch("o200k_base")
    assert not any(tmp_path.iterdir())


def test_token_pieces_name_partial_characters():
    enc = TiktokenTokenizer(load_encoding("cl100k_base"))
    pieces = token_pieces(enc, enc.encode("🦙!"))
    assert [p.text for p in pieces] == ["⟨F0 9F⟩", "⟨A6⟩", "⟨99⟩", "!"]
    assert [p.note for p in pieces] == [
        "2 of 4 bytes of '🦙'", "1 of 4 bytes of '🦙'", "1 of 4 bytes of '🦙'", None
    ]  # fmt: skip
    assert b"".join(p.bytes for p in pieces) == "🦙!".encode()


def test_special_token_text_is_plain_text():
    enc = TiktokenTokenizer(load_encoding("cl100k_base"))
    ids = enc.encode("<|endoftext|>")
    assert 100257 not in ids and enc.decode(ids) == "<|endoftext|>"


# ---- corpus ---------------------------------------------------------------------------------


def test_presets():
    assert len(CATS_AND_DOGS) == 6 and 18 <= len(COUNTRY_STYLE) <= 22


@pytest.mark.parametrize(
    "text, message",
    [("", "empty"), ("   \n\t ", "empty"), ("word", "two words"), ("x " * 30_000, "limit")],
)
def test_bad_corpora_get_clear_messages(text, message):
    with pytest.raises(CorpusError, match=message):
        load_corpus(text)


def test_uploads_must_be_small_utf8_text():
    with pytest.raises(CorpusError, match="binary"):
        load_upload(b"\x89PNG\x00\x01")
    with pytest.raises(CorpusError, match="UTF-8"):
        load_upload("café au lait".encode("latin-1"))
    with pytest.raises(CorpusError, match="MB"):
        load_upload(b"a " * 3_000_000)
    assert load_upload(b"the cat\r\nthe dog\x1b sat").lines == ("the cat", "the dog sat")


# ---- data -----------------------------------------------------------------------------------


def test_windows_are_the_notebooks():
    tok = WordTokenizer.fit(CATS_AND_DOGS)
    ds = build_dataset(CATS_AND_DOGS, tok, block_size=5)
    assert ds.X.shape == (28, 5) and ds.Y.shape == (28,)
    pad = 14
    assert ds.X[0].tolist() == [pad, pad, pad, pad, 13] and ds.Y[0].item() == 3  # PAD.. the -> cat
    assert ds.X[4].tolist() == [13, 3, 11, 9, 13] and ds.Y[4].item() == 7  # the cat sat on the -> mat


def test_eos_adds_one_window_per_sentence():
    tok = WordTokenizer.fit(CATS_AND_DOGS)
    ds = build_dataset(CATS_AND_DOGS, tok, block_size=5, eos=True)
    assert len(ds) == 34 and ds.vocab_size == 16
    assert ds.label(ds.eos_id) == "EOS" and ds.label(ds.pad_id) == "PAD"
    assert (ds.Y == ds.eos_id).sum().item() == 6


def test_loss_floor_by_hand():
    """"the" (sentence start) -> cat/dog 3:3; "the cat" -> sat/chased/slept; ... (notebook: 0.3839)."""
    tok = WordTokenizer.fit(CATS_AND_DOGS)
    ds = build_dataset(CATS_AND_DOGS, tok, block_size=5)
    by_hand = (6 * math.log(2) + 3 * math.log(3) + 3 * math.log(3)) / 28  # the other windows are certain
    assert loss_floor(ds) == pytest.approx(by_hand, abs=1e-12)
    assert round(loss_floor(ds), 4) == 0.3839


def test_every_position_targets_shift_and_ignore_padding():
    tok = WordTokenizer.fit(CATS_AND_DOGS)
    ds = build_dataset(CATS_AND_DOGS, tok, block_size=5)
    targets = ds.every_position_targets()
    # window PAD PAD PAD the cat -> sat: the last PAD predicts "the" (a sentence starts)
    assert targets[1].tolist() == [IGNORE, IGNORE, 13, 3, 11]
    assert conditional_entropy([((1,), 2), ((1,), 2)]) == 0.0


# ---- model, training, sampling --------------------------------------------------------------


def test_config_rejects_heads_that_do_not_divide():
    with pytest.raises(ValueError, match="divide"):
        ModelConfig(vocab_size=10, d_model=32, n_heads=3)
    for heads in head_choices(32):  # every head count the Train page offers is accepted
        ModelConfig(vocab_size=10, d_model=32, n_heads=heads)
    assert head_choices(32) == [1, 2, 4, 8, 16]


def test_last_logits_equal_the_full_forward():
    model = build_model(ModelConfig(vocab_size=15), seed=0)
    x = torch.randint(0, 15, (7, 5))
    full, attention = model(x, need_weights=True)
    assert torch.allclose(model.last_logits(x), full[:, -1], atol=1e-6)
    assert attention.shape == (7, 2, 5, 5)
    assert torch.allclose(attention.sum(-1), torch.ones(7, 2, 5), atol=1e-6)


def test_causal_mask_hides_later_positions():
    model = build_model(ModelConfig(vocab_size=15, causal=True), seed=0)
    _, attention = model(torch.randint(0, 15, (3, 5)), need_weights=True)
    assert torch.all(attention.triu(1) == 0)


def test_notebook_run_reaches_the_floor(notebook_run):
    exp = notebook_run
    assert exp.tokenizer.vocab == NOTEBOOK_VOCAB and len(exp.dataset) == 28
    assert len(exp.trainer.history) == 300
    assert abs(exp.trainer.history[-1] - 0.3839) < 0.005
    assert abs(final_loss(exp.model, exp.dataset) - exp.floor) < 0.005


def test_training_is_deterministic_for_a_seed():
    runs = []
    for _ in range(2):
        exp = Experiment(TrainSettings(epochs=20))
        exp.trainer.run()
        runs.append(exp.trainer.history)
    assert runs[0] == runs[1]
    other = Experiment(TrainSettings(epochs=20, seed=7))
    other.trainer.run()
    assert other.trainer.history != runs[0]


def test_chunks_add_up_and_callbacks_fire():
    exp = Experiment(TrainSettings(epochs=30))
    seen = []
    exp.trainer.run(10, on_step=lambda t: seen.append(t.epoch))
    assert seen == list(range(1, 11)) and not exp.trainer.done
    exp.trainer.run(100)
    assert exp.trainer.epoch == 30 and exp.trainer.done
    whole = Experiment(TrainSettings(epochs=30))
    whole.trainer.run()
    assert whole.trainer.history == exp.trainer.history


def test_divergence_stops_and_keeps_last_good_weights():
    exp = Experiment(TrainSettings(lr=1e6, epochs=50))
    exp.trainer.run()
    assert exp.trainer.stopped_reason and "too high" in exp.trainer.stopped_reason
    assert all(math.isfinite(v) for v in exp.trainer.history)
    assert all(torch.isfinite(p).all() for p in exp.model.parameters())
    assert math.isfinite(final_loss(exp.model, exp.dataset))


def test_with_eos_generations_end_by_themselves():
    exp = Experiment(TrainSettings(eos=True))
    exp.trainer.run()
    for seed, prompt in enumerate(["the cat", "the dog", "the cat chased", "the dog sat"]):
        out = generate(exp.model, exp.dataset, prompt, max_new_tokens=15, seed=seed)
        assert out.stopped == "eos", out.text
        assert len(out.text.split()) <= 6


def test_without_eos_generations_ramble(notebook_run):
    out = generate(notebook_run.model, notebook_run.dataset, "the cat", max_new_tokens=15, seed=0)
    assert out.stopped == "length" and len(out.text.split()) == 17


def test_generation_reports_unknown_words_and_is_seeded(notebook_run):
    exp = notebook_run
    a = generate(exp.model, exp.dataset, "the zebra", seed=3)
    b = generate(exp.model, exp.dataset, "the zebra", seed=3)
    assert a.unknown == ["zebra"] and a.text == b.text
    greedy = generate(exp.model, exp.dataset, "the dog barked", greedy=True, max_new_tokens=3)
    assert greedy.text == "the dog barked at the mailman"
    top1 = generate(exp.model, exp.dataset, "the dog barked", top_k=1, max_new_tokens=3, seed=9)
    assert top1.text == greedy.text
    assert all(abs(sum(p for _, p in s.candidates) - 1) < 0.2 for s in greedy.steps)


def test_every_position_without_mask_cheats():
    """Trained on every position without the causal mask, the model reads the answer."""
    cheat = Experiment(TrainSettings(loss_on="every", causal=False, eos=True))
    cheat.trainer.run()
    honest = Experiment(TrainSettings(loss_on="every", causal=True, eos=True))
    honest.trainer.run()
    assert cheat.trainer.history[-1] < cheat.floor - 0.2  # below what is honestly possible
    assert honest.trainer.history[-1] >= honest.floor - 1e-6
    assert honest_loss(cheat.model, cheat.dataset) > cheat.floor + 0.5  # future hidden: lost
    assert honest_loss(honest.model, honest.dataset) == pytest.approx(honest.trainer.history[-1], abs=0.01)


def test_copied_spans():
    assert copied_spans([1, 2, 3, 9, 4], [[0, 1, 2, 3, 4]], min_len=2) == [(0, 3)]
    assert copied_spans([5, 6], [[0, 1]], min_len=1) == []


def test_trainer_rejects_bad_learning_rates():
    exp = Experiment(TrainSettings(epochs=1))
    for lr in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            Trainer(exp.model, exp.dataset, lr=lr)
