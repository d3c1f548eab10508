"""Train can start a run with any Which tokens? entrant's tokenizer: "bytes" and "cl100k_base"
(its ids renumbered to the tokens the corpus uses) next to words, characters and a BPE."""

import pytest

from minillm import tournament as T
from minillm.checkpoint import load_checkpoint, save_checkpoint
from minillm.corpus import COUNTRY_STYLE
from minillm.experiment import TOKENIZER_KINDS, Experiment, TrainSettings, make_tokenizer
from minillm.tokenizers import tiktoken_tokenizer


def test_every_entrant_kind_is_a_train_tokenizer():
    assert set(TOKENIZER_KINDS) >= {"word", "character", "bpe", "bytes", "cl100k_base"}
    with pytest.raises(ValueError, match="tokenizer must be one of"):
        make_tokenizer(TrainSettings(tokenizer="sentencepiece"))


def test_a_byte_run_trains_on_256_ids_and_pad():
    exp = Experiment(TrainSettings(tokenizer="bytes", epochs=3), device="cpu")
    assert exp.dataset.vocab_size == 257  # 256 bytes + PAD (no EOS)
    exp.trainer.run()
    assert exp.summary()["epochs"] == 3


def test_a_cl100k_run_has_a_row_per_token_its_corpus_uses_and_survives_a_save():
    settings = TrainSettings(lines=COUNTRY_STYLE, tokenizer="cl100k_base", epochs=10, eos=True)
    exp = Experiment(settings, device="cpu")
    base = tiktoken_tokenizer("cl100k_base")
    used = {i for line in COUNTRY_STYLE for i in base.encode(line)}
    assert exp.tokenizer.vocab_size == len(used)
    assert exp.dataset.vocab_size == len(used) + 2  # PAD and EOS
    assert exp.tokenizer.decode(exp.tokenizer.encode(COUNTRY_STYLE[0])) == COUNTRY_STYLE[0]
    exp.trainer.run()
    again = load_checkpoint(save_checkpoint(exp))
    assert again.settings == settings
    assert again.tokenizer.to_big == exp.tokenizer.to_big
    assert again.trainer.history == exp.trainer.history


def test_a_tournament_bpe_trains_on_the_train_page_as_a_bpe_run():
    train = list(COUNTRY_STYLE[:18])
    bpe = next(e for e in T.entrants(train, COUNTRY_STYLE[18:], T.TournamentSettings(
        bpe_merges=(50,), cl100k=False)) if e.kind == "bpe")
    exp = Experiment(TrainSettings(lines=COUNTRY_STYLE, tokenizer="bpe", epochs=2),
                     bpe=bpe.tokenizer.encoding, device="cpu")
    assert exp.dataset.vocab_size == 256 + bpe.merges + 1
    exp.trainer.run()
