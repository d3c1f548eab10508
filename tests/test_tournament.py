"""minillm.tournament: exact answers for the fair score, the tokenizers, determinism, the lesson."""

import dataclasses
import math

import pytest
import torch

from minillm import tournament as T
from minillm.stories import StorySettings
from minillm.tokenizers import tiktoken_tokenizer

LN2 = math.log(2)


def uniform(match: T.Match) -> T.Match:
    """Make the model bet evenly on every id: zero output weights give equal scores."""
    with torch.no_grad():
        match.model.lm_head.weight.zero_()
        match.model.lm_head.bias.zero_()
    return match


def entrant(kind, train, settings=T.TournamentSettings(bpe_merges=(), cl100k=False)):
    return next(e for e in T.entrants(train, ["x"], settings) if e.kind == kind)


# ---- the fair score, worked by hand ---------------------------------------------------------


def test_bits_per_character_of_a_hand_worked_word_entrant():
    """Training: "the cat sat" and "the cat ran". Words seen twice: cat, the; sat and ran once,
    so they are unknown too. Ids: cat, the, UNK, then PAD and EOS: V = 5. Held out: "the rat".
    A model that bets 1/5 on each id pays ln 5 for "the", for UNK (rat) and for EOS; spelling
    "rat" costs (3 + 1) x ln(9 + 1), the training text having 9 distinct characters
    (t h e space c a s r n). The text is 7 characters and a newline: 8."""
    train, valid = ["the cat sat", "the cat ran"], ["the rat"]
    settings = T.TournamentSettings(block_size=4, d_model=8, n_heads=2, steps=1,
                                    bpe_merges=(), cl100k=False)
    words = T.entrants(train, valid, settings)[0]
    assert words.tokenizer.vocab == ["cat", "the", "[UNK]"]
    result = uniform(T.Match(words, train, valid, settings)).result()
    assert result.vocab_size == 5
    expected = (3 * math.log(5) + 4 * math.log(10)) / 8 / LN2
    assert result.heldout_bits == pytest.approx(expected, abs=1e-6)
    assert result.unknown_share == 0.5  # rat, of the two words
    assert result.unknown_bits == pytest.approx((math.log(5) + 4 * math.log(10)) / 8 / LN2,
                                                abs=1e-6)
    assert result.tokens_per_char == 3 / 8
    assert result.context_chars == 4 * 8 / 3
    assert result.embedding_parameters == 2 * 5 * 8 + 5


def test_bits_per_character_of_a_hand_worked_character_entrant():
    """Training "abab" and "ba": a and b, each seen 3 times; held out "abc": a, b, UNK (c was
    never seen, spelled as its one UTF-8 byte: ln 256) and EOS, each ln 5 under even bets.
    4 characters with the newline: log2(5) + 8 / 4 = log2(5) + 2 bits per character."""
    train, valid = ["abab", "ba"], ["abc"]
    settings = T.TournamentSettings(block_size=3, d_model=8, n_heads=2, steps=1,
                                    bpe_merges=(), cl100k=False)
    chars = T.entrants(train, valid, settings)[1]
    assert chars.tokenizer.vocab == ["a", "b", "[UNK]"]
    result = uniform(T.Match(chars, train, valid, settings)).result()
    assert result.heldout_bits == pytest.approx(math.log2(5) + 2, abs=1e-6)
    assert result.unknown_share == pytest.approx(1 / 3)


def test_a_byte_model_knows_everything_and_pays_only_its_bets():
    train, valid = ["ab"], ["hé"]  # h, two bytes of é, EOS: 4 tokens over 3 characters
    settings = T.TournamentSettings(block_size=3, d_model=8, n_heads=2, steps=1,
                                    bpe_merges=(), cl100k=False)
    byte_entrant = T.entrants(train, valid, settings)[2]
    result = uniform(T.Match(byte_entrant, train, valid, settings)).result()
    assert result.heldout_bits == pytest.approx(4 * math.log2(258) / 3, abs=1e-6)
    assert result.unknown_share == 0 and result.unknown_bits == 0


def test_the_unknown_word_charge_on_the_worked_example():
    """The docstring's example: C = 19 training characters, "zorp" unknown, UNK at 0.05."""
    assert T.spelling_nats("zorp", 19) == pytest.approx(5 * math.log(20), abs=1e-12)
    charge = T.unknown_word_nats("zorp", 0.05, 19)
    assert charge == pytest.approx(-math.log(0.05) + 5 * math.log(20), abs=1e-12)
    assert round(charge, 3) == 17.974
    # A letter the training text never had is spelled as its UTF-8 bytes.
    assert T.spelling_nats("zé", 2, {"z"}) == pytest.approx(2 * math.log(3) + 2 * math.log(256))


def test_the_rule_is_one_sentence_with_the_training_characters():
    result = T.TournamentResult(T.TournamentSettings(), [], heldout_chars=10, training_chars=29)
    rule = result.unknown_rule()
    assert rule.count(".") == 1 and rule.endswith(".")
    assert "29 characters" in rule and "letter by letter" in rule


# ---- the tokenizers -------------------------------------------------------------------------

AWKWARD = ["the cat sat", "  two  spaces", "emoji 🦙👋🏽 and 東京で寿司", "<|endoftext|> tab\tend",
           "café naïve", "x"]


def test_remapped_cl100k_ids_round_trip_the_text():
    base = tiktoken_tokenizer("cl100k_base")
    small = T.RemappedTokenizer(base, AWKWARD)
    every_id = sorted({i for line in AWKWARD for i in small.encode(line)})
    assert every_id == list(range(small.vocab_size))  # dense: a row per token used
    assert small.vocab_size < 100
    for line in AWKWARD:
        ids = small.encode(line)
        assert small.decode(ids) == line
        assert [small.to_big[i] for i in ids] == base.encode(line)  # GPT-4's own cuts
        assert b"".join(small.piece_bytes(i) for i in ids) == line.encode("utf-8")


def test_remapped_tokenizer_refuses_a_token_it_was_not_made_for():
    small = T.RemappedTokenizer(tiktoken_tokenizer("cl100k_base"), ["the cat"])
    with pytest.raises(ValueError, match="renumbering"):
        small.encode("zebra crossing")


def test_bpes_are_named_by_the_merges_the_text_allows():
    lines = ["the cat sat on the mat", "the dog sat on the log"] * 5
    settings = T.TournamentSettings(bpe_merges=(5, 1000, 5000), cl100k=False)
    bpes = [e for e in T.entrants(lines, ["the cat"], settings) if e.kind == "bpe"]
    most = bpes[-1].merges
    assert [e.name for e in bpes] == ["BPE-5", f"BPE-{most}"]  # 1,000 and 5,000: one entrant
    assert most < 1000
    assert bpes[-1].note == (f"asked for 1,000 and 5,000 merges: the training text allows only "
                             f"{most} (then every word is one piece)")
    assert bpes[0].note == ""


def test_windows_predict_every_token_once_and_training_windows_cover_every_token():
    tok = T.UnitTokenizer(list("abcdefghij"), "character")  # PAD 11, EOS 12
    lines = ["abcdefghij", "ab", "jihgfedcba"]
    scoring = T.windows(lines, tok, 4)
    assert len(scoring) == sum(len(line) + 1 for line in lines)  # every token and each EOS
    assert scoring.Y.tolist() == [i for line in lines for i in tok.encode(line) + [12]]
    for line in lines:  # each character once in a line: the targets name the positions
        training = T.windows([line], tok, 4, stride=3)
        targets = training.every_position_targets()
        assert len(training) == -(-(len(line) + 1) // 3)  # every third window, from the end
        assert set(targets[targets >= 0].tolist()) == set(tok.encode(line)) | {12}


# ---- corpora, settings, bad input -----------------------------------------------------------


def test_story_corpus_holds_out_whole_stories_with_the_grammar_floor():
    corpus = T.story_corpus(StorySettings(seed=0), 200)
    assert (len(corpus.train), len(corpus.valid)) == (40, 5)
    assert corpus.floor_bits == pytest.approx(0.296, abs=5e-4)
    assert corpus.floor_exact
    assert not T.story_corpus(StorySettings(seed=0, typo_rate=0.1), 200).floor_exact
    assert corpus.digest == T.story_corpus(StorySettings(seed=0), 200).digest
    assert corpus.digest != T.story_corpus(StorySettings(seed=1), 200).digest


def test_a_corpus_too_small_to_hold_out_gets_a_sentence():
    with pytest.raises(T.TournamentError, match="Only 6 lines: at least 10 are needed"):
        T.text_corpus(["the cat sat"] * 6)
    with pytest.raises(T.TournamentError, match="needs held-out lines"):
        T.run_tournament(["the cat sat"], [], T.TournamentSettings())


def test_settings_that_cannot_run_are_refused_in_words():
    with pytest.raises(T.TournamentError, match="heads do not divide"):
        T.TournamentSettings(d_model=30, n_heads=4)
    with pytest.raises(T.TournamentError, match="steps must be between"):
        T.TournamentSettings(steps=0)


# ---- the whole tournament -------------------------------------------------------------------

SMALL = T.TournamentSettings(block_size=16, d_model=16, n_heads=2, steps=12, batch_size=8,
                             bpe_merges=(30,))


def test_the_tournament_is_deterministic_for_a_seed():
    corpus = T.story_corpus(StorySettings(seed=4, new_name_rate=0.3), 300)
    runs = [T.run_tournament(corpus.train, corpus.valid, SMALL, heldout_floor_bits=corpus.floor_bits)
            for _ in range(2)]

    def numbers(result):
        return [{k: v for k, v in dataclasses.asdict(e).items() if k != "seconds"}
                for e in result.entrants]

    assert numbers(runs[0]) == numbers(runs[1])
    assert [e.name for e in runs[0].entrants] == ["words", "characters", "bytes", "BPE-30",
                                                  "cl100k_base"]
    assert runs[0].verdict() == runs[1].verdict()
    other = T.run_tournament(corpus.train, corpus.valid, dataclasses.replace(SMALL, seed=1))
    assert numbers(other) != numbers(runs[0])


def test_progress_is_reported_step_by_step():
    corpus = T.story_corpus(StorySettings(seed=4), 200)
    seen = []
    T.run_tournament(corpus.train, corpus.valid, dataclasses.replace(SMALL, steps=3, cl100k=False),
                     on_progress=lambda name, step, steps: seen.append((name, step, steps)))
    assert seen[:3] == [("words", 1, 3), ("words", 2, 3), ("words", 3, 3)]
    assert len(seen) == 4 * 3


def test_the_estimate_is_close_to_the_cost_model_inputs():
    corpus = T.story_corpus(T.DEFAULT_STORIES)
    quick = T.with_budget(T.TournamentSettings(), "quick", "small")
    full = T.with_budget(T.TournamentSettings(), "full", "small")
    assert 10 < T.estimated_seconds(corpus.train, corpus.valid, quick) < 30  # the estimate of the quick budget
    assert T.estimated_seconds(corpus.train, corpus.valid, full) > 2.5 * 10


# ---- what the verdict says ------------------------------------------------------------------


def result_with(words_bits, bpe_bits, unknown):
    def row(name, kind, bits, share=0.0, paid=0.0):
        return T.EntrantResult(name, 100, 6400, 20000, 0.25, 128.0, 1.0, bits, share, paid,
                               kind=kind)

    return T.TournamentResult(T.TournamentSettings(), [
        row("words", "words", words_bits, unknown, 0.2 if unknown else 0.0),
        row("characters", "characters", 1.4), row("BPE-200", "bpe", bpe_bits)], 1000, 0.4, 29)


def test_the_verdict_says_when_pieces_win_and_why():
    verdict = result_with(0.733, 0.655, 0.035).verdict()
    assert verdict == ("On text it never saw, BPE-200 did best (0.655 bits per character) and "
                       "words came 2nd of 3 (0.733): 3.5% of the held-out words were new to it, "
                       "and those cost it 0.200 bits per character.")


def test_the_verdict_says_honestly_when_words_win():
    verdict = result_with(0.421, 0.429, 0.0).verdict()
    assert verdict.startswith("Here words won (0.421 bits per character, against 0.429 for "
                              "the best pieces, BPE-200): every held-out word was one it knew, "
                              "so the word model lost nothing to unknown words")
    assert verdict.count(".") == 3  # the numbers' two points and one full stop: one sentence
    assert "turn up new names or typos" in verdict
    few = result_with(0.421, 0.429, 0.004).verdict()
    assert "only 0.4% of the held-out words were new, so the word model lost little" in few


# ---- the lesson, on the page's default experiment ------------------------------------------


@pytest.fixture(scope="module")
def default_experiment():
    corpus = T.story_corpus(T.DEFAULT_STORIES)
    settings = T.with_budget(T.TournamentSettings(), "quick", "small")
    return corpus, T.run_tournament(corpus.train, corpus.valid, settings,
                                    heldout_floor_bits=corpus.floor_bits)


def test_with_new_names_the_best_pieces_beat_words(default_experiment):
    corpus, result = default_experiment
    words, pieces = result.entrant("words"), result.best_pieces()
    assert words.unknown_share > 0
    assert words.unknown_bits > 0
    assert pieces.heldout_bits < words.heldout_bits
    assert pieces.kind in ("bpe", "cl100k_base")
    assert all(e.heldout_bits > corpus.floor_bits for e in result.entrants)  # nobody beats it
    assert result.verdict().startswith(f"On text it never saw, {pieces.name} did best")
    cl100k = result.entrant("cl100k_base")
    assert cl100k.vocab_size < 2_000  # renumbered: a row per token used, not 100,277


def test_train_run_is_the_experiments_run_with_the_longest_context_that_fits():
    """Train with bytes on the default stories: the experiment's model and steps, every
    position, EOS, the same held-out share; the block as long as the budget allows."""
    from dataclasses import replace

    from minillm.budget import BudgetError, Budgets
    from minillm.experiment import Experiment

    corpus = T.story_corpus(T.DEFAULT_STORIES, 600)
    quick = T.with_budget(T.TournamentSettings(), "quick", "small")
    tight = Budgets(kept_mb=4)
    run = T.train_run("bytes", corpus, quick, tight)
    assert (run.tokenizer, run.d_model, run.epochs, run.batch_size, run.loss_on, run.eos,
            run.valid_share) == ("bytes", quick.d_model, quick.steps, quick.batch_size,
                                 "every", True, T.VALID_SHARE)
    assert 1 <= run.block_size < T.MAX_TRAIN_BLOCK  # 16 does not fit in 4 MB kept
    exp = Experiment(run, budgets=tight, device="cpu")  # fits: not refused
    assert exp.split.train == corpus.train
    with pytest.raises(BudgetError):
        Experiment(replace(run, block_size=run.block_size + 1), budgets=tight, device="cpu")
    roomy = T.train_run("bytes", corpus, quick, Budgets())
    assert roomy.block_size == T.MAX_TRAIN_BLOCK
    with pytest.raises(BudgetError):  # not even a one-token context fits: said, not hidden
        T.train_run("bytes", corpus, quick, Budgets(kept_mb=1))
