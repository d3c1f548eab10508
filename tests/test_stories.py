"""The story grammar against answers worked out by hand, and its own parser.

The parser tries every alternative of every rule, so "each generated sentence has exactly one
derivation, and its log-probability is the generator's" is a real check of the grammar (the
ambiguous-grammar test below shows it fails when it should).
"""

from __future__ import annotations

import itertools
import math

import pytest

from minillm import stories
from minillm.heldout import characters_in, split_lines
from minillm.stories import (
    ADJECTIVES,
    FAMILIAR_NAMES,
    FEELINGS,
    MAX_SENTENCES,
    Cast,
    StoryGrammar,
    StorySettings,
    StoryState,
    generate_stories,
)

TINY = StorySettings(n_names=2, n_nouns=1, n_verbs=1, n_places=1, new_name_rate=0, seed=1)


def nats(*chances: float) -> float:
    """-ln of a product of chances: the cost of making those choices."""
    return -sum(math.log(c) for c in chances)


def entropy(chances) -> float:
    return -math.fsum(p * math.log(p) for p in chances)


# ---- exact answers for a tiny grammar -----------------------------------------------------


def test_a_tiny_text_costs_what_its_choices_cost_by_hand():
    text = generate_stories(TINY, 4)
    assert text.lines == (
        "once there was a girl named tobo .",
        "tobo was hungry .",
        "she went to the park .",
        "once there was a girl named tobo .",
    )
    by_hand = [
        nats(2 / 5, 1 / 2),  # a girl (2 in 5), named tobo (1 of 2 names)
        nats(1 / 4, 1 / 2, 1 / 6),  # "SUBJECT was FEELING", her name (not "she"), hungry
        nats(3 / 4, 1 / 4, 1 / 2),  # same story (3 in 4), "went to the PLACE", "she"; one place
        nats(1 / 4, 2 / 5, 1 / 2),  # a new story (1 in 4), a girl, tobo
    ]
    assert text.sentence_nats == pytest.approx(by_hand, rel=1e-14)
    assert text.total_nats == pytest.approx(math.log(5 * 48 * 32 / 3 * 20), rel=1e-14)
    assert text.story_starts == (0, 3)
    assert text.names == (("tobo",), ("tobo",))
    # 34 + 17 + 22 + 34 characters, and a newline after each line: 111.
    assert characters_in(text.lines) == 111
    assert text.bits_per_character() == pytest.approx(math.log2(51200) / 111, rel=1e-14)
    assert text.entropy_kind == "exact" and not text.upper_bound


def test_the_tiny_grammars_first_sentence_entropy_by_hand():
    """Every possible first line, each parsed: the chances sum to 1, and the entropy is
    H(girl, boy, friends) + (chance of one name) ln 2: friends' second name is then forced."""
    grammar = StoryGrammar(TINY)
    sentences = [
        f"once there was a {kind} named {name} ." for kind in ("girl", "boy") for name in ("mira", "tobo")
    ] + [f"once there were two friends named {pair} ." for pair in ("mira and tobo", "tobo and mira")]
    chances = [math.exp(grammar.parse(s).logp) for s in sentences]
    assert math.fsum(chances) == pytest.approx(1.0, abs=1e-15)
    assert chances == pytest.approx([1 / 5] * 4 + [1 / 10] * 2, rel=1e-14)
    by_hand = entropy([2 / 5, 2 / 5, 1 / 5]) + (2 / 5 + 2 / 5 + 1 / 5) * math.log(2)
    assert entropy(chances) == pytest.approx(by_hand, rel=1e-14)
    assert grammar.parse("once there were two friends named mira and mira .") is None


def test_the_tiny_grammars_next_sentence_entropy_by_hand():
    """All 122 sentences that can follow "a girl named mira", written out independently of the
    grammar: each parses once, their chances sum to 1, and their entropy is the hand sum."""
    grammar = StoryGrammar(TINY)
    after_intro = grammar.parse("once there was a girl named mira .").after
    subjects = ["mira", "she"]
    objects = ["ball"] + [f"{adjective} ball" for adjective in ADJECTIVES]
    sentences = [
        f"{s} found {d} {o}{end} ."
        for s, d, o, end in itertools.product(
            subjects, ["a", "the", "her"], objects, ["", " in the park"]
        )
    ]
    sentences += [f"{s} went to the park ." for s in subjects]
    sentences += [f"{s} was {f} ." for s in subjects for f in FEELINGS]
    assert len(sentences) == 2 * 3 * 9 * 2 + 2 + 2 * 6 == 122
    derivations = [grammar.parse_all(s, after_intro) for s in sentences]
    assert all(len(d) == 1 for d in derivations)
    chances = [math.exp(d[0].logp) for d in derivations]
    assert math.fsum(chances) == pytest.approx(1.0, abs=1e-14)
    by_hand = (
        entropy([1 / 2, 1 / 4, 1 / 4])  # which kind of sentence
        + math.log(2)  # name or pronoun
        + 1 / 2 * (math.log(3) + math.log(2) + 1 / 2 * math.log(len(ADJECTIVES)) + math.log(2))
        + 1 / 4 * math.log(len(FEELINGS))  # the one place costs nothing
    )
    assert entropy(chances) == pytest.approx(by_hand, rel=1e-13)


# ---- parse-back -------------------------------------------------------------------------


def test_ten_thousand_generated_sentences_parse_back_exactly_once():
    settings = StorySettings(new_name_rate=0.2, seed=7)  # many new names and OTHER_NAMEs
    text = generate_stories(settings, 10_000)
    grammar = StoryGrammar(settings)
    state, parsed_nats, starts = StoryState(), [], []
    for i, line in enumerate(text.lines):
        derivations = grammar.parse_all(line, state)
        assert len(derivations) == 1, line
        (derivation,) = derivations
        assert derivation.nats == text.sentence_nats[i], line  # exactly, not approximately
        parsed_nats.append(derivation.nats)
        state = derivation.after
        if state.sentences == 1:
            starts.append(i)
            assert state.cast.names == text.names[len(starts) - 1]
    assert math.fsum(parsed_nats) == text.total_nats
    assert tuple(starts) == text.story_starts
    assert any(len(names) == 2 for names in text.names)  # friends were in it
    assert any(len(name) == 6 for names in text.names for name in names)  # so were new names


def test_an_ambiguous_grammar_is_caught(monkeypatch):
    """A familiar name that is also three syllables could be made two ways."""
    monkeypatch.setattr(stories, "FAMILIAR_NAMES", ("mira", "bakimo"))
    grammar = StoryGrammar(StorySettings(n_names=2, new_name_rate=0.5))
    assert len(grammar.parse_all("once there was a boy named bakimo .")) == 2
    with pytest.raises(AssertionError, match="ambiguous"):
        grammar.parse("once there was a boy named bakimo .")


def test_pronouns_must_agree_with_the_story():
    grammar = StoryGrammar()
    boy = grammar.parse("once there was a boy named kito .").after
    assert grammar.parse("he lost his ball .", boy) is not None
    assert grammar.parse("kito lost his ball .", boy) is not None
    mismatches = ["she lost his ball .", "he lost her ball .", "kito were happy .", "mira lost his ball ."]
    for wrong in mismatches:
        assert grammar.parse(wrong, boy) is None, wrong
    friends = grammar.parse("once there were two friends named kito and nora .").after
    assert grammar.parse("kito and nora were happy .", friends) is not None
    assert grammar.parse("nora and kito were happy .", friends) is None  # the order they were named
    assert grammar.parse("they lost their ball .", friends) is not None


@pytest.mark.parametrize(
    "sentence, valid",
    [
        ("they went to the park .", True),
        ("she found her shiny kite in the garden .", True),
        ("nora and kito were happy .", True),
        ("bakimo was brave .", True),  # a new name: fine in some story
        ("once there was a girl named bakimo .", True),
        ("nora and nora were happy .", False),
        ("she found his kite .", False),
        ("she went to teh park .", False),  # a typo
        ("she  went to the park .", False),  # two spaces
        ("she went to the park", False),  # no full stop
        ("", False),
    ],
)
def test_is_sentence_without_the_story(sentence, valid):
    assert StoryGrammar().is_sentence(sentence) is valid


def test_parse_lines_walks_the_story():
    text = generate_stories(StorySettings(seed=2), 50)
    derivations = StoryGrammar(StorySettings(seed=2)).parse_lines(text.lines)
    assert [d.nats for d in derivations] == list(text.sentence_nats)
    broken = list(text.lines)
    broken[1] = "nonsense ."
    derivations = StoryGrammar().parse_lines(broken)
    assert derivations[1] is None and derivations[2] is not None  # the story carries on


# ---- seeds and knobs --------------------------------------------------------------------


def test_same_seed_same_text_different_seed_different_text():
    first = generate_stories(StorySettings(seed=11), 500)
    assert generate_stories(StorySettings(seed=11), 500) == first
    other = generate_stories(StorySettings(seed=12), 500)
    assert other.lines != first.lines
    assert other.sentence_nats != first.sentence_nats


def test_new_names_reach_held_out_text_the_training_text_never_had():
    def unseen_names(rate: float) -> set[str]:
        text = generate_stories(StorySettings(new_name_rate=rate, seed=4), 3_000)
        split = split_lines(text.lines, 0.1, seed=0, story_starts=text.story_starts)
        train_words = {w for line in split.train for w in line.split()}
        valid_names = {
            name
            for story, start in enumerate(text.story_starts)
            if start in split.valid_positions
            for name in text.names[story]
        }
        return valid_names - train_words

    unseen = unseen_names(0.3)
    assert len(unseen) > 10
    assert all(len(name) == 6 and StoryGrammar().name_chance(name) > 0 for name in unseen)
    assert unseen_names(0.0) == set()
    no_new = generate_stories(StorySettings(new_name_rate=0, n_names=3), 2_000)
    assert {n for names in no_new.names for n in names} == set(FAMILIAR_NAMES[:3])


def test_the_vocabulary_knobs():
    text = generate_stories(StorySettings(n_nouns=3, n_verbs=2, n_places=1, new_name_rate=0), 2_000)
    words = {w for line in text.lines for w in line.split()}
    assert words & set(stories.NOUNS) == set(stories.NOUNS[:3])
    assert words & set(stories.VERBS) == set(stories.VERBS[:2])
    assert words & set(stories.PLACES) == {"park"}


def test_typos_make_the_figure_an_upper_bound():
    rate = 0.05
    settings = StorySettings(typo_rate=rate, seed=5)
    text = generate_stories(settings, 2_000)
    assert text.upper_bound and text.entropy_kind == "upper bound"
    changed = [i for i, line in enumerate(text.lines) if line != text.clean_lines[i]]
    assert 100 < len(changed) < 1_000
    grammar = StoryGrammar(settings)
    clean = grammar.parse_lines(text.clean_lines)
    assert all(d is not None for d in clean)  # under the typos, every line is grammatical
    no_typo_cost = -math.log1p(-rate)  # each word of 3+ letters that escaped a typo pays this
    for i, derivation in enumerate(clean):
        eligible = sum(len(w) >= 3 for w in text.clean_lines[i].split())
        floor = derivation.nats + eligible * no_typo_cost
        if i in changed:
            assert text.sentence_nats[i] > floor
        else:
            assert text.sentence_nats[i] >= floor - 1e-9
    typo_lines = [text.lines[i] for i in changed]
    assert sum(grammar.is_sentence(line) for line in typo_lines) < len(typo_lines) / 10
    clean_text = generate_stories(StorySettings(seed=5), 100)
    assert clean_text.lines == clean_text.clean_lines and not clean_text.upper_bound


@pytest.mark.parametrize(
    "field, value",
    [("n_names", 1), ("n_names", 17), ("n_nouns", 0), ("n_verbs", 25), ("n_places", 13),
     ("new_name_rate", 1.5), ("typo_rate", 0.6), ("typo_rate", -0.1)],
)  # fmt: skip
def test_settings_out_of_range_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        StorySettings(**{field: value})


@pytest.mark.parametrize("n", [0, MAX_SENTENCES + 1])
def test_sizes_out_of_range_are_refused(n):
    with pytest.raises(ValueError, match="n_sentences"):
        generate_stories(StorySettings(), n)


def test_every_name_new_costs_more_and_the_largest_size_works():
    all_new = generate_stories(StorySettings(new_name_rate=1.0, seed=9), 2_000)
    assert all(len(name) == 6 for names in all_new.names for name in names)
    usual = generate_stories(StorySettings(seed=9), 2_000)
    assert all_new.bits_per_character() > usual.bits_per_character()
    assert len(generate_stories(StorySettings(), MAX_SENTENCES).lines) == MAX_SENTENCES


def test_wildcard_cast_reads_names_from_the_sentence():
    grammar = StoryGrammar()
    any_friends = StoryState(Cast("friends", ()), 1)
    assert grammar.parse_all("kito and bakimo went to the park .", any_friends)
    assert not grammar.parse_all("kito went to the park .", any_friends)
