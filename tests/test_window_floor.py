"""The held-out floor for a model that reads only so far back (bench/gpt_speed.py's
`window_floor`), on stories worked out by hand: what a later word of the cast costs a
predictor that is told every other choice and sees only the cast words in its window."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from gpt_speed import window_floor  # noqa: E402
from minillm.stories import StorySettings  # noqa: E402

SETTINGS = StorySettings()  # 8 familiar names, 5% brand new
FAMILIAR = (1 - SETTINGS.new_name_rate) / SETTINGS.n_names  # the chance of "mira"


def extra(story: str, window: int) -> float:
    """The nats the window costs on top of the grammar's (given as 0 here)."""
    return window_floor([story], [0.0], SETTINGS, window)


def test_a_window_that_shows_the_first_sentence_costs_nothing():
    assert extra("once there was a girl named mira . she went to the park .", 100) == 0.0
    assert extra("once there were two friends named tobo and lena . they were happy .", 100) == 0.0


def test_a_pronoun_with_nothing_in_view_pays_for_the_kind_of_cast():
    assert extra("once there was a girl named mira . she went to the park .", 0) == pytest.approx(
        -math.log(0.4))
    # each "they" and "were" pays for two friends (1 in 5) when nothing is in view; five
    # characters back, the first "they" sees the first sentence end, "were" the "they" before
    # it, and only the second "they" sees nothing of the cast
    friends = ("once there were two friends named tobo and lena . they went to the park . "
               "they were happy .")
    assert extra(friends, 0) == pytest.approx(-3 * math.log(0.2))
    assert extra(friends, 5) == pytest.approx(-math.log(0.2))


def test_a_name_with_nothing_in_view_pays_for_the_name_too():
    one = "once there was a girl named mira . mira went to the park ."
    assert extra(one, 0) == pytest.approx(-math.log(0.8 * FAMILIAR))
    two = "once there were two friends named tobo and lena . tobo and lena went to the park ."
    pair = 0.2 * FAMILIAR * FAMILIAR / (1 - FAMILIAR)  # the second name differs from the first
    assert extra(two, 0) == pytest.approx(-math.log(pair))
    new = "once there was a boy named bakimo . bakimo went to the park ."
    assert extra(new, 0) == pytest.approx(-math.log(0.8 * SETTINGS.new_name_rate / 65**3))


def test_a_word_in_view_tells_what_it_can():
    # "mira" and "was" see the first sentence; "she" sees only "was": one child, not which
    story = "once there was a girl named mira . mira was happy . she went to the park ."
    assert extra(story, 12) == pytest.approx(-math.log(0.5))
    # the second "mira": the first one in view (21 characters back), or nothing (19)
    story = "once there was a girl named mira . mira went to the park . mira was happy ."
    assert extra(story, 21) == 0.0
    assert extra(story, 19) == pytest.approx(-math.log(0.8 * FAMILIAR))
