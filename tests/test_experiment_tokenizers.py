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


@pytest.mark.parametrize("kind", ["bytes", "cl100k_base"])
def test_train_offers_the_kind_and_generate_and_attention_open_its_model(kind):
    """The Train page lists every entrant's tokenizer; a run with it trains to the end, and
    Generate and Attention work on the model it made."""
    from conftest import app_test, page_with
    from ui.train_settings import TOKENIZERS

    at = app_test("pages/train.py").run()
    assert TOKENIZERS[kind] in at.radio(key="train_tokenizer").options
    at.radio(key="train_tokenizer").set_value(kind)
    at.number_input(key="train_epochs").set_value(10)
    at.run()
    assert not at.exception, at.exception
    at.button(key="train_go").click()
    for _ in range(40):
        at.run()
        assert not at.exception, at.exception
        exp = at.session_state["experiment"] if "experiment" in at.session_state else None
        if exp is not None and exp.trainer.done:
            break
    assert exp.settings.tokenizer == kind and exp.trainer.done
    unit = "bytes" if kind == "bytes" else "pieces"
    assert at.slider(key="train_block").label.endswith(f"context: {unit})")
    for page in ("pages/generate.py", "pages/attention.py"):
        page_at = page_with(page, exp)
        assert not page_at.exception and not page_at.error, (page, page_at.error)
