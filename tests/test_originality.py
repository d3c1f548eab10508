"""Creating or remembering, measured (minillm.inspect), the held-out floor as a loss, and the
loss chart's held-out curve: exact answers worked out by hand."""

import math

import numpy as np
import pytest
import torch

from conftest import trained_experiment
from minillm import inspect
from minillm.charts.training import (HELDOUT_COLOR, HELDOUT_RUN, label_places, loss_chart,
                                     reference_rules, runs_frame)
from minillm.corpus import COUNTRY_STYLE
from minillm.experiment import Experiment, TrainSettings
from minillm.heldout import bits_per_character, characters_in, nats_per_token
from minillm.inspect import IN_HELDOUT, IN_NEITHER, IN_TRAINING, Sample
from minillm.sample import generate
from minillm.stories import StoryGrammar, StorySettings, generate_stories
from minillm.tokenizers import WordTokenizer

TRAIN = ("once there was a girl named mira . she went to the park . mira was happy .",
         "once there was a boy named tobo . he found a red kite .")
HELD_OUT = ("once there was a girl named lena . lena was sleepy . she went to the barn .",)
GRAMMAR = StoryGrammar(StorySettings())


def sample(text, prompt="", stopped="length"):
    return Sample(text, len(prompt), stopped)


# --- the held-out floor as a loss ----------------------------------------------------------

def test_nats_per_token_undoes_bits_per_character():
    for loss, tokens, chars in [(1.5, 4, 12), (0.3, 1_000, 4_321), (2.25, 7, 7)]:
        bits = bits_per_character(loss, tokens, chars)
        assert nats_per_token(bits, tokens, chars) == pytest.approx(loss, rel=1e-14)
    assert nats_per_token(1.0, 2, 10) == pytest.approx(5 * math.log(2), rel=1e-15)
    with pytest.raises(ValueError):
        nats_per_token(1.0, 0, 10)


@pytest.mark.parametrize("loss_on", ["last", "every"])
def test_the_heldout_floor_as_a_loss_and_each_token_counted_once(loss_on):
    lines, nats = generate_stories(StorySettings(seed=1), 300).by_story()
    exp = Experiment(TrainSettings(lines=lines, block_size=8, loss_on=loss_on, causal=True,
                                   epochs=10), line_nats=nats)
    # One prediction per held-out token but each line's first (given): one per window,
    # whatever the objective (on every position a token is a target at several positions).
    tokens = sum(len(line.split(" ")) - 1 for line in exp.split.valid)
    assert len(exp.valid) == tokens
    chars = characters_in(exp.split.valid)
    assert exp.bits_per_character(1.0, "valid") == pytest.approx(tokens / chars / math.log(2))
    expected = exp.heldout_floor_bits * math.log(2) * chars / tokens
    assert exp.heldout_floor_loss == pytest.approx(expected, rel=1e-14)
    assert exp.bits_per_character(exp.heldout_floor_loss, "valid") == pytest.approx(
        exp.heldout_floor_bits, rel=1e-14)


def test_no_heldout_floor_without_the_grammars_nats_or_without_held_out_lines():
    assert Experiment(TrainSettings(lines=COUNTRY_STYLE, epochs=10)).heldout_floor_loss is None
    lines, nats = generate_stories(StorySettings(), 100).by_story()
    none_held = Experiment(TrainSettings(lines=lines, epochs=10, valid_share=0.0), line_nats=nats)
    assert none_held.valid is None and none_held.heldout_floor_loss is None


# --- sentences -----------------------------------------------------------------------------

def test_sentences_end_at_a_full_stop_followed_by_a_space_or_the_end():
    text = "mira went home . she was happy . she"
    spans, rest = inspect.sentences_in(text)
    assert [text[a:b] for a, b in spans] == ["mira went home .", " she was happy ."]
    assert text[rest:] == " she"
    assert inspect.sentences_in("a.b c") == ([], 0)  # a full stop inside a word ends nothing
    assert inspect.line_sentences(["the cat sat", "a b .  c d ."]) == {"the cat sat", "a b .", "c d ."}


def test_each_sentence_is_found_in_training_in_held_out_or_in_neither():
    result = inspect.creating_or_remembering([
        sample("once there was a girl named mira . she went to the park . lena was sleepy . "
               "she found a red kite .", prompt="once there"),
    ], TRAIN, HELD_OUT, GRAMMAR)
    assert [(s.text, s.found) for s in result.sentences] == [
        ("once there was a girl named mira .", IN_TRAINING),
        ("she went to the park .", IN_TRAINING),
        ("lena was sleepy .", IN_HELDOUT),  # never trained on, and wrong: the girl is mira
        ("she found a red kite .", IN_NEITHER),
    ]
    assert [s.valid for s in result.sentences] == [True, True, False, True]
    assert result.new_and_correct == 1 and result.count() == 4 and result.unfinished == 0
    assert result.share(IN_TRAINING) == 0.5 and result.share(IN_HELDOUT) == 0.25
    assert list(result.table().columns) == ["sentence", "found in", "a sentence of the grammar"]


def test_a_sentence_in_both_parts_counts_as_training():
    result = inspect.creating_or_remembering([sample("mira was happy .")], TRAIN, TRAIN)
    assert [s.found for s in result.sentences] == [IN_TRAINING]
    assert result.sentences[0].valid is None and not result.grammar  # no grammar given
    assert list(result.table().columns) == ["sentence", "found in"]


def test_pronouns_and_names_must_fit_the_story_the_sample_tells():
    result = inspect.creating_or_remembering([
        sample("once there was a boy named tobo . she was happy . tobo was happy . "
               "once there was a girl named nora . nora went to the garden ."),
    ], TRAIN, (), GRAMMAR)
    assert [s.valid for s in result.sentences] == [True, False, True, True, True]
    # a story of one sentence is not one of the grammar's: every story has two or more
    two_intros = inspect.creating_or_remembering([
        sample("once there was a boy named tobo . once there was a girl named mira ."),
    ], TRAIN, (), GRAMMAR)
    assert [s.valid for s in two_intros.sentences] == [True, False]


def test_from_the_middle_of_a_story_a_sentence_is_judged_alone():
    result = inspect.creating_or_remembering([
        sample("she went to the moon . they went to the park .", prompt="she went"),
    ], TRAIN, (), GRAMMAR)
    assert [(s.found, s.valid) for s in result.sentences] == [(IN_NEITHER, False),
                                                              (IN_NEITHER, True)]


def test_the_prompts_own_sentences_and_an_unfinished_end_are_not_judged():
    prompt = "once there was a girl named mira ."
    result = inspect.creating_or_remembering([
        sample(prompt + " she was brave . she went to", prompt=prompt),
        sample(prompt, prompt=prompt),  # wrote nothing: nothing unfinished either
    ], TRAIN, (), GRAMMAR)
    assert [(s.text, s.valid) for s in result.sentences] == [("she was brave .", True)]
    assert result.unfinished == 1 and result.samples == 2


def test_at_eos_the_line_ends_a_sentence():
    lines = ("the cat sat on the mat", "the dog sat on the rug")
    result = inspect.creating_or_remembering([
        sample("the cat sat on the rug", "the cat", "eos"),
        sample("the dog sat on the rug", "the dog", "eos"),
        sample("the dog sat on the mat the", "the dog", "length"),
    ], lines, ())
    assert [(s.text, s.found) for s in result.sentences] == [
        ("the cat sat on the rug", IN_NEITHER), ("the dog sat on the rug", IN_TRAINING)]
    assert result.unfinished == 1 and result.count(IN_NEITHER) == 1


def test_the_first_sentence_that_names_the_cast():
    tokenizer = WordTokenizer.fit(TRAIN)
    assert inspect.first_sentence_tokens(TRAIN, tokenizer) == 8  # once there was a boy named tobo .
    assert inspect.first_sentence_tokens(["no full stop here"], tokenizer) is None


# --- a batch of samples --------------------------------------------------------------------

@pytest.fixture(scope="module")
def notebook_model():
    return trained_experiment(epochs=150, eos=True)


def test_a_batch_with_top_k_1_is_the_greedy_text(notebook_model):
    exp = notebook_model
    for prompt in ("the cat", "the dog sat"):
        greedy = generate(exp.model, exp.dataset, prompt, max_new_tokens=12, greedy=True)
        batch = inspect.sample_batch(exp.model, exp.dataset, prompt, n=3, max_new_tokens=12,
                                     top_k=1, seed=5)
        assert {s.text for s in batch} == {greedy.text}
        assert {s.stopped for s in batch} == {greedy.stopped}
        assert batch[0].prompt_chars == len(prompt)


def test_a_batch_is_seeded_and_its_samples_differ(notebook_model):
    exp = notebook_model
    a = inspect.sample_batch(exp.model, exp.dataset, "the", n=20, max_new_tokens=10, seed=3)
    b = inspect.sample_batch(exp.model, exp.dataset, "the", n=20, max_new_tokens=10, seed=3)
    c = inspect.sample_batch(exp.model, exp.dataset, "the", n=20, max_new_tokens=10, seed=4)
    assert a == b and a != c
    assert len({s.text for s in a}) > 1  # "the" goes on as cat or dog
    for s in a:  # each sample: the prompt, then words of the corpus, ended by EOS or the limit
        assert s.text.startswith("the ")
        assert set(s.text.split()) <= set(exp.dataset.tokenizer.vocab)
        assert s.stopped in ("eos", "pad", "length")
        assert s.stopped != "length" or len(s.text.split()) == 1 + 10


def test_a_batch_reads_each_window_as_generate_does(notebook_model):
    """Sampling from the batch's own probabilities: the first step of every sample is a
    draw from the model's distribution after the prompt, so every first word is one the
    model gives a real chance."""
    from minillm.sample import next_token_probs

    exp = notebook_model
    probs = next_token_probs(exp.model, exp.dataset, exp.dataset.tokenizer.encode("the cat"))
    batch = inspect.sample_batch(exp.model, exp.dataset, "the cat", n=20, max_new_tokens=1, seed=0)
    firsts = [exp.dataset.tokenizer.stoi[s.text.split()[2]] for s in batch if s.stopped == "length"]
    assert firsts and all(float(probs[i]) > 0.01 for i in firsts)


# --- attention per layer -------------------------------------------------------------------

def test_attention_maps_of_each_layer():
    exp = trained_experiment(lines=COUNTRY_STYLE, n_layers=2, epochs=10, loss_on="every",
                             causal=True, block_size=6)
    context = exp.dataset.X[7].tolist()
    with torch.no_grad():
        maps = exp.model.attention_maps(torch.tensor([context]))
    for layer in (0, 1):
        labels, weights = inspect.attention_maps(exp.model, exp.dataset, context, layer)
        np.testing.assert_allclose(weights, maps[layer][0].numpy(), atol=1e-7)
        assert len(labels) == 6
    assert not np.allclose(maps[0][0].numpy(), maps[1][0].numpy())
    with pytest.raises(ValueError):
        inspect.attention_maps(exp.model, exp.dataset, context, 2)


# --- the loss chart's held-out curve and floors ----------------------------------------------

def test_the_held_out_curve_is_its_own_run_in_its_own_colour():
    runs = runs_frame([3.0, 2.0, 1.0], "x", [{"label": "y", "history": [2.5, 2.4]}],
                      valid_history=[(0, 3.1), (2, 2.2), (3, 2.4)])
    held = runs[runs["run"] == HELDOUT_RUN]
    assert held[["epoch", "loss"]].values.tolist() == [[0, 3.1], [2, 2.2], [3, 2.4]]
    assert held["current"].all()
    spec = loss_chart(runs, floor=0.5, start_loss=3.0, held_out=True, heldout_floor=1.2).to_dict()
    scale = next(layer["encoding"]["color"]["scale"] for layer in spec["layer"]
                 if layer.get("mark", {}).get("type") == "line")
    colours = dict(zip(scale["domain"], scale["range"]))
    assert colours[HELDOUT_RUN] == HELDOUT_COLOR
    assert colours["this run: x"] != HELDOUT_COLOR and colours["1 run ago: y"] != HELDOUT_COLOR


def test_the_floors_are_named_for_what_they_bound():
    alone = reference_rules(0.38, 2.7)["what"].tolist()
    assert alone == ["ln|V| = 2.700: a model that knows nothing",
                     "floor = 0.3800: the best any model can do on this data"]
    held = reference_rules(0.38, 2.7, held_out=True, heldout_floor=1.05)
    assert held["what"].tolist()[1] == "floor = 0.3800: the floor for memorising this data"
    assert held["loss"].tolist() == [2.7, 0.38, 1.05]
    assert held["what"].tolist()[2].startswith("held-out floor = 1.0500")
    assert held["label"].tolist()[:2] == ["ln|V| = 2.700: knows nothing",
                                          "floor = 0.3800 (memorising)"]  # short: a phone
    assert held["label"].tolist()[2] == "held-out floor = 1.0500 (the language's)"


def test_the_floors_labels_sit_left_and_ln_v_right():
    """The curves end on the floors at the right: floor labels go left, above their rules
    (stacked when close); ln|V|'s goes right, under its rule (minillm.charts.training)."""
    top, height = 4.0, 400
    places = label_places([3.0, 1.0, 1.2], top, height)
    assert [side for side, _ in places] == ["right", "left", "left"]
    assert places[0][1] < 3.0 and places[1][1] > 1.0 and places[2][1] > 1.2
    spec = loss_chart(runs_frame([3.0, 2.0], "x", valid_history=[(0, 3.1)]), floor=1.0,
                      start_loss=3.0, held_out=True, heldout_floor=1.2).to_dict()
    marks = [layer for layer in spec["layer"] if layer.get("mark", {}).get("type") == "text"
             and "data" in layer]
    assert {m["mark"]["align"] for m in marks} == {"right", "left"}
