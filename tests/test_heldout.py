"""Held-out splits and bits per character, against answers worked out by hand."""

from __future__ import annotations

import math

import pytest

from minillm.heldout import MIN_LINES, bits_per_character, characters_in, split_lines

LINES = [f"sentence number {i}" for i in range(100)]
STORY_STARTS = list(range(0, 100, 5))  # twenty stories of five lines


def test_the_split_is_deterministic_by_seed():
    assert split_lines(LINES, 0.1, seed=3) == split_lines(LINES, 0.1, seed=3)
    assert split_lines(LINES, 0.1, seed=3).valid != split_lines(LINES, 0.1, seed=4).valid


def test_a_pinned_split():
    """Python's random.Random(0).sample(range(20), 2) picks lines 12 and 13."""
    split = split_lines([f"line {i}" for i in range(20)], 0.1, seed=0)
    assert split.valid_positions == (12, 13)
    assert split.valid == ("line 12", "line 13")


@pytest.mark.parametrize("story_starts", [None, STORY_STARTS])
def test_the_parts_are_disjoint_cover_everything_and_keep_the_order(story_starts):
    split = split_lines(LINES, 0.2, seed=1, story_starts=story_starts)
    train, valid = set(split.train_positions), set(split.valid_positions)
    assert not train & valid
    assert train | valid == set(range(len(LINES)))
    assert list(split.train_positions) == sorted(train)
    assert list(split.valid_positions) == sorted(valid)
    assert split.train == tuple(LINES[i] for i in split.train_positions)
    assert split.valid == tuple(LINES[i] for i in split.valid_positions)
    assert split.reason == ""


def test_the_share_counts_lines_or_stories_rounding_half_up():
    assert len(split_lines(LINES, 0.1).valid) == 10
    assert len(split_lines(LINES, 0.25).valid) == 25
    assert len(split_lines(LINES[:15], 0.1).valid) == 2  # 1.5 lines -> 2
    assert len(split_lines(LINES[:14], 0.1).valid) == 1  # 1.4 lines -> 1
    assert len(split_lines(LINES[:10], 0.01).valid) == 1  # at least one line held out
    assert len(split_lines(LINES[:10], 0.99).train) == 1  # at least one line left to train on
    by_story = split_lines(LINES, 0.1, story_starts=STORY_STARTS)
    assert len(by_story.valid) == 2 * 5  # 10% of 20 stories, 5 lines each


def test_stories_stay_whole():
    split = split_lines(LINES, 0.3, seed=5, story_starts=STORY_STARTS)
    valid = set(split.valid_positions)
    for start in STORY_STARTS:
        story = set(range(start, start + 5))
        assert story <= valid or not story & valid


def test_it_unpacks_as_train_and_valid():
    train, valid = split_lines(LINES, 0.1)
    assert (len(train), len(valid)) == (90, 10)


@pytest.mark.parametrize(
    "lines, share, story_starts, words",
    [
        (LINES[: MIN_LINES - 1], 0.1, None, "Only 9 lines"),
        ([], 0.1, None, "Only 0 lines"),
        (LINES, 0.0, None, "0%"),
        (LINES, 0.1, [0], "single story"),
    ],
)
def test_no_validation_part_says_why(lines, share, story_starts, words):
    split = split_lines(lines, share, story_starts=story_starts)
    assert split.valid == () and split.valid_positions == ()
    assert split.train == tuple(lines)
    assert words in split.reason


@pytest.mark.parametrize("share", [-0.1, 1.0, 1.5])
def test_a_share_out_of_range_is_refused(share):
    with pytest.raises(ValueError, match="valid_share"):
        split_lines(LINES, share)


@pytest.mark.parametrize("story_starts", [[1, 5], [0, 5, 5], [0, 7, 3], [0, 100]])
def test_bad_story_starts_are_refused(story_starts):
    with pytest.raises(ValueError, match="story_starts"):
        split_lines(LINES, 0.1, story_starts=story_starts)


# ---- bits per character ------------------------------------------------------------------


def test_characters_count_each_line_and_its_newline():
    assert characters_in(["the cat sat"]) == 12
    assert characters_in(["ab", "", "c"]) == 3 + 1 + 2
    assert characters_in([]) == 0


def test_bits_per_character_by_hand():
    # "the cat sat" + newline = 12 characters. A word model paying 1.5 nats on each of its
    # 4 predictions (the, cat, sat, EOS) spends 6 nats; 6 / 12 / ln 2 = 1 / (2 ln 2).
    assert bits_per_character(1.5, 4, 12) == pytest.approx(1 / (2 * math.log(2)), rel=1e-15)
    # A character model spending the same 6 nats over its 12 predictions scores the same.
    assert bits_per_character(0.5, 12, 12) == pytest.approx(bits_per_character(1.5, 4, 12))
    # Guessing each character as a fair coin costs ln 2 nats: exactly one bit per character.
    assert bits_per_character(math.log(2), 12, 12) == pytest.approx(1.0, rel=1e-15)
    # A model with four characters per token and 2 ln 2 nats per token: half a bit.
    assert bits_per_character(2 * math.log(2), 3, 12) == pytest.approx(0.5, rel=1e-15)


def test_bits_per_character_needs_characters():
    with pytest.raises(ValueError):
        bits_per_character(1.0, 1, 0)
