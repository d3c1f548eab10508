"""A model trained on generated stories keeps its held-out floor through a saved file.

The floor (each line's nats under the grammar, `Experiment.line_nats`) and the grammar's knobs
(Generate parses what the model writes with them) are not in the corpus's text: a file must
carry them, or a model opened from the class board or a download loses "the language's floor"
and "new and correct". A file holds the stories' recipe and makes the same lines again.
"""

from __future__ import annotations

import io
import math

import pytest
import torch

from minillm.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minillm.corpus import MAX_CHARS
from minillm.experiment import Experiment, TrainSettings
from minillm.stories import StorySettings, generate_stories

STORY = StorySettings(new_name_rate=0.3, typo_rate=0.02, seed=7)


def stories_experiment(sentences: int, story: StorySettings = STORY) -> Experiment:
    lines, nats = generate_stories(story, sentences).by_story()
    settings = TrainSettings(lines=lines, corpus_name="Stories (generated)", tokenizer="character",
                             epochs=10, batch_size=32, block_size=8, d_model=16, n_heads=2)
    exp = Experiment(settings, line_nats=nats, story_settings=story, device="cpu")
    exp.trainer.run(3)
    return exp


@pytest.fixture(scope="module")
def small():
    return stories_experiment(100)


def payload_of(data: bytes) -> dict:
    return torch.load(io.BytesIO(data), weights_only=True)


def resave(payload: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def test_the_held_out_floor_and_the_grammar_come_back(small):
    loaded = load_checkpoint(save_checkpoint(small))
    assert loaded.settings == small.settings
    assert loaded.line_nats == small.line_nats
    assert loaded.story_settings == small.story_settings
    assert loaded.heldout_floor_bits is not None
    assert loaded.heldout_floor_bits == small.heldout_floor_bits
    assert loaded.heldout_floor_loss == small.heldout_floor_loss
    for key, value in small.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value)
    assert loaded.trainer.history == small.trainer.history


def test_the_pages_default_stories_load_though_longer_than_a_pasted_corpus():
    exp = stories_experiment(2_000, StorySettings())  # the Train page's default preset
    assert sum(map(len, exp.settings.lines)) > MAX_CHARS  # a pasted corpus this long is refused
    data = save_checkpoint(exp)
    assert payload_of(data)["settings"]["lines"] == []  # the recipe, not the text
    loaded = load_checkpoint(data)
    assert loaded.settings.lines == exp.settings.lines
    assert loaded.heldout_floor_bits == exp.heldout_floor_bits
    assert math.isfinite(loaded.heldout_floor_bits)


def test_a_corpus_that_is_not_generated_is_saved_as_text_as_before():
    exp = Experiment(TrainSettings(epochs=10), device="cpu")
    payload = payload_of(save_checkpoint(exp))
    assert payload["story"] is None and payload["settings"]["lines"] == list(exp.settings.lines)
    assert load_checkpoint(save_checkpoint(exp)).line_nats is None


def test_a_file_saved_before_stories_still_loads(small):
    payload = payload_of(save_checkpoint(small))
    del payload["story"]
    payload["settings"]["lines"] = list(small.settings.lines)
    loaded = load_checkpoint(resave(payload))
    assert loaded.settings.lines == small.settings.lines and loaded.line_nats is None


@pytest.mark.parametrize("edit, words", [
    (lambda s: s["settings"].update(seed=8), "do not make the corpus"),
    (lambda s: s.update(sentences=101), "do not make the corpus"),
    (lambda s: s.update(sha256="0" * 64), "do not make the corpus"),
    (lambda s: s.update(sentences=20_001), "from 1 to 20,000 sentences"),
    (lambda s: s.update(sentences=True), "from 1 to 20,000 sentences"),
    (lambda s: s["settings"].update(typo_rate=0.9), "outside the grammar's"),
    (lambda s: s["settings"].update(n_names="8"), "story settings are damaged"),
    (lambda s: s["settings"].update(extra=1), "story settings are damaged"),
    (lambda s: s.pop("sha256"), "story settings are damaged"),
])
def test_a_tampered_recipe_is_refused_in_words(small, edit, words):
    payload = payload_of(save_checkpoint(small))
    edit(payload["story"])
    with pytest.raises(CheckpointError, match=words):
        load_checkpoint(resave(payload))


def test_a_file_with_both_a_recipe_and_lines_is_refused(small):
    payload = payload_of(save_checkpoint(small))
    payload["settings"]["lines"] = list(small.settings.lines)
    with pytest.raises(CheckpointError, match="both saved and generated"):
        load_checkpoint(resave(payload))


def test_the_held_out_curve_comes_back_too(small):
    """A loaded model draws the held-out curve it had (the file used to keep only training's)."""
    assert small.trainer.valid_history  # checked at the start and after each eval
    loaded = load_checkpoint(save_checkpoint(small))
    assert loaded.trainer.valid_history == small.trainer.valid_history
    assert loaded.summary()["valid_loss"] == small.summary()["valid_loss"]


def test_a_file_saved_before_held_out_curves_loads_without_one(small):
    payload = payload_of(save_checkpoint(small))
    del payload["valid_history"]
    assert load_checkpoint(resave(payload)).trainer.valid_history == []


@pytest.mark.parametrize("valid_history, words", [
    ("0.5", "held-out history is damaged"),
    ([[0, float("nan")]], "held-out history is damaged"),
    ([[0, 1]], "held-out history is damaged"),  # a loss must be a float
    ([[True, 1.0]], "held-out history is damaged"),
    ([[0, 1.0, 2.0]], "held-out history is damaged"),
    ([[0, 1.0]] * 5, "does not fit its training history"),  # more checks than epochs + 1
    ([[2, 1.0], [1, 1.0]], "does not fit its training history"),
    ([[0, 1.0], [99, 1.0]], "does not fit its training history"),  # past the 3 epochs trained
    ([[-1, 1.0]], "does not fit its training history"),
])
def test_a_tampered_held_out_curve_is_refused_in_words(small, valid_history, words):
    payload = payload_of(save_checkpoint(small))
    payload["valid_history"] = valid_history
    with pytest.raises(CheckpointError, match=words):
        load_checkpoint(resave(payload))
