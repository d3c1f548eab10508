"""Stories from a small grammar: as much text as you like, and its exact entropy.

A real corpus has one big problem for a lesson: nobody knows how well a model *could* do on
it. Here the text comes from a small set of rules (a grammar) written for this project, so
we know the chance of every sentence, and therefore the best score any model can reach.

A story is a few sentences, one per line. The first one introduces the cast, and the rest
must agree with it:

    once there was a girl named mira .
    she found a red kite in the park .
    mira went to the garden .
    she was happy .

After "a girl named mira" every later sentence says "she", "her" and "was"; after "two
friends named mira and tobo" it says "they", "their" and "were". To predict the pronoun a
model must look back to the story's first line: a longer context helps. Most names come from
a small familiar cast; a few (``new_name_rate``) are brand new, built from three random
syllables ("bakimo"), so held-out text has names the training text never had. A name says
nothing about "he" or "she" (lena is a boy in one story, a girl in the next): only the
story's first line does. A typo knob
(``typo_rate``) swaps, drops or doubles letters in some words.

Why the grammar's entropy is the floor for held-out text (for a 15-year-old). Each time the
generator makes a choice (girl or boy? which noun?) it rolls a die with known chances, and a
choice made with chance p costs -log p nats to guess: a fair coin costs ln 2 (one bit), a
forced choice costs nothing. The sum over a text's choices is its entropy: the surprise that
is really in it. A model is a guesser that spreads its bets over what comes next. On new text
from the same rules, no guesser does better on average than one that bets exactly the true
chances (this is Gibbs' inequality): any other spread of bets loses somewhere more than it
wins elsewhere. It is like a fair die: on new rolls no strategy beats guessing 1/6 each,
even if you memorised every roll you have seen. On its *training* text a model can go lower,
by memorising; that is why it is judged on lines it never saw, and why this figure is the
floor for held-out text. Strictly, the sum is the surprise of *this* sample; its average is
the entropy, and over a few thousand sentences the two agree closely. A model reaches it only
if it sees far enough back: a model that reads one line at a time cannot know whether the
next sentence says "she" or "they", so it pays more.

Counting: the floor in bits per character is the total nats / characters / ln 2, where the
characters are every character of every line plus the newline that ends it
(`minillm.heldout.characters_in`), the same count a model's score uses. Without typos the
grammar is unambiguous (each sentence has exactly one derivation, which `StoryGrammar.parse`
finds), so the sum is exact. With typos on, the sum also counts the typo choices made, but a
typo'd text could have come about in more than one way, so the figure is an upper bound on
its true surprise (`Stories.upper_bound`).

>>> stories = generate_stories(StorySettings(seed=3), 5)
>>> for line in stories.lines:
...     print(line)
once there was a girl named lena .
she went to the park .
once there were two friends named tobo and natuna .
tobo and natuna went to the forest .
they went to the market .
>>> [round(nats, 2) for nats in stories.sentence_nats]  # natuna is new: 3 syllables of 65
[3.05, 3.87, 20.52, 3.87, 4.16]
>>> round(stories.bits_per_character(), 3), stories.entropy_kind
(0.296, 'exact')
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Iterator, NamedTuple, Sequence

from minillm.heldout import characters_in

# --------------------------------------------------------------------------------------------
# The words (written for this project). Every list is disjoint from every other, and every
# noun and adjective starts with a consonant, so "a" never needs to become "an".

NOUNS = (
    "ball", "kite", "book", "hat", "cake", "drum", "lamp", "boat", "shell", "stone",
    "cup", "bell", "key", "map", "coat", "sock", "box", "bag", "feather", "pencil",
    "basket", "candle", "wagon", "button", "ribbon", "blanket", "bucket", "teapot", "carrot",
    "cookie", "puzzle", "rope", "shoe", "spoon", "ring", "jar", "tent", "sled", "flag",
    "whistle",
)  # fmt: skip
VERBS = (
    "found", "lost", "painted", "carried", "dropped", "washed", "hid", "fixed", "held",
    "kicked", "packed", "shared", "bought", "made", "threw", "opened", "cleaned", "hugged",
    "pushed", "pulled", "borrowed", "counted", "wrapped", "sold",
)  # fmt: skip
PLACES = (
    "park", "garden", "kitchen", "forest", "market", "library", "school", "barn", "meadow",
    "yard", "attic", "village",
)  # fmt: skip
ADJECTIVES = ("red", "blue", "green", "little", "big", "shiny", "soft", "striped")
FEELINGS = ("happy", "sleepy", "hungry", "brave", "proud", "curious")

# Names are made of consonant-vowel syllables. Familiar names have two, brand-new names
# three, so the two kinds can never be confused; and as no consonant is a vowel, a name
# splits into syllables in exactly one way.
CONSONANTS = "bdfklmnprstvz"
VOWELS = "aeiou"
SYLLABLES = tuple(c + v for c in CONSONANTS for v in VOWELS)  # "ba", "be", ..., "zu": 65
FAMILIAR_NAMES = (
    "mira", "tobo", "lena", "kito", "sami", "nora", "bodi", "rusa",
    "pema", "dilo", "fina", "zubo", "vesa", "lumi", "kada", "teso",
)  # fmt: skip

#: The pronoun, possessive and verb "to be" that agree with each kind of cast.
AGREEMENT = {
    "girl": {"{he}": "she", "{his}": "her", "{was}": "was"},
    "boy": {"{he}": "he", "{his}": "his", "{was}": "was"},
    "friends": {"{he}": "they", "{his}": "their", "{was}": "were"},
}

#: After a story's second sentence, the chance that the next sentence starts a new story
#: (so a story has 2 + 3 = 5 sentences on average).
NEW_STORY_CHANCE = 1 / 4

MAX_SENTENCES = 50_000


# --------------------------------------------------------------------------------------------
# Settings and the story so far


@dataclass(frozen=True)
class StorySettings:
    """The knobs of the language (all but ``seed``) and of the sample (``seed``)."""

    n_names: int = 8  # familiar names in the cast list (2..16: two friends need two)
    n_nouns: int = 12  # things the characters handle (1..40)
    n_verbs: int = 8  # what they do to them (1..24)
    n_places: int = 6  # where they go (1..12)
    new_name_rate: float = 0.05  # chance a name is brand new, built from syllables (0..1)
    typo_rate: float = 0.0  # chance a word of 3+ letters gets a typo (0..0.5)
    seed: int = 0  # which sample of the language: same seed, same text

    def __post_init__(self):
        for name, low, high in (
            ("n_names", 2, len(FAMILIAR_NAMES)),
            ("n_nouns", 1, len(NOUNS)),
            ("n_verbs", 1, len(VERBS)),
            ("n_places", 1, len(PLACES)),
        ):
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"{name} must be between {low} and {high}, not {value}")
        if not 0 <= self.new_name_rate <= 1:
            raise ValueError(f"new_name_rate must be between 0 and 1, not {self.new_name_rate}")
        if not 0 <= self.typo_rate <= 0.5:
            raise ValueError(f"typo_rate must be between 0 and 0.5, not {self.typo_rate}")


@dataclass(frozen=True)
class Cast:
    """Who a story is about: a girl, a boy or two friends, and their names.

    Empty ``names`` stands for "any names" (used by `StoryGrammar.is_sentence`).
    """

    kind: str  # "girl", "boy" or "friends"
    names: tuple[str, ...]

    def words(self, reference: str) -> tuple[str, ...]:
        """The words "{name}", "{he}", "{his}" or "{was}" stand for in this story."""
        if reference == "{name}":
            return tuple(" and ".join(self.names).split())
        return (AGREEMENT[self.kind][reference],)


@dataclass(frozen=True)
class StoryState:
    """What the grammar remembers between sentences: the cast, and how far the story is."""

    cast: Cast | None = None  # None before the first story
    sentences: int = 0  # sentences of the current story so far


class Choice(NamedTuple):
    """One choice in a derivation: which rule, what it picked, and ln of its chance."""

    rule: str
    picked: str
    logp: float


@dataclass(frozen=True)
class Derivation:
    """How the grammar makes one sentence: its choices, in order, and the state after it."""

    sentence: str
    choices: tuple[Choice, ...]
    after: StoryState

    @property
    def logp(self) -> float:
        """ln of the sentence's chance, given the story so far (math.fsum: exactly rounded)."""
        return math.fsum(c.logp for c in self.choices)

    @property
    def nats(self) -> float:
        return -self.logp


# --------------------------------------------------------------------------------------------
# The grammar

#: Rules whose pieces are glued into one word instead of separated by spaces.
GLUED = {"NEW_NAME"}


class Alternative(NamedTuple):
    chance: float
    symbols: tuple[str, ...]  # RULE names, literal words, or "{name}"-style references
    tag: str = ""  # what the choice means, when it is more than its words (the cast's kind)

    @property
    def picked(self) -> str:
        return self.tag or " ".join(self.symbols)


def story_rules(settings: StorySettings) -> dict[str, list[Alternative]]:
    """The grammar as a table: each rule's alternatives and their chances.

    Upper-case symbols are rules, "{...}" are words the story so far decides (the cast's
    name and pronouns), anything else is a literal word. Two things are not in the table:
    the choice between INTRO and NEXT (it depends on the story so far: see
    `StoryGrammar.starts`) and OTHER_NAME, which is a NAME different from the one just said.

    >>> rules = story_rules(StorySettings(n_nouns=2))
    >>> [(round(a.chance, 2), a.picked) for a in rules["INTRO"]]  # doctest: +NORMALIZE_WHITESPACE
    [(0.4, 'girl'), (0.4, 'boy'), (0.2, 'friends')]
    >>> [(a.chance, a.picked) for a in rules["NOUN"]]
    [(0.5, 'ball'), (0.5, 'kite')]
    """

    def one_of(words: Sequence[str]) -> list[Alternative]:
        return [Alternative(1 / len(words), (word,)) for word in words]

    def alternatives(*options: tuple) -> list[Alternative]:
        # (chance, "words and RULES"[, tag]); an alternative with chance 0 is left out
        return [Alternative(c, tuple(text.split()), *tag) for c, text, *tag in options if c > 0]

    rate = settings.new_name_rate
    return {
        # A story's first sentence: who it is about.
        "INTRO": alternatives(
            (2 / 5, "once there was a girl named NAME .", "girl"),
            (2 / 5, "once there was a boy named NAME .", "boy"),
            (1 / 5, "once there were two friends named NAME and OTHER_NAME .", "friends"),
        ),
        # Every later sentence of the story.
        "NEXT": alternatives(
            (1 / 2, "SUBJECT VERB THING PLACE_END ."),
            (1 / 4, "SUBJECT went to the PLACE ."),
            (1 / 4, "SUBJECT {was} FEELING ."),
        ),
        "SUBJECT": alternatives((1 / 2, "{name}"), (1 / 2, "{he}")),
        "THING": alternatives((1 / 3, "a OBJECT"), (1 / 3, "the OBJECT"), (1 / 3, "{his} OBJECT")),
        "OBJECT": alternatives((1 / 2, "NOUN"), (1 / 2, "ADJECTIVE NOUN")),
        "PLACE_END": alternatives((1 / 2, ""), (1 / 2, "in the PLACE")),
        "NAME": alternatives((1 - rate, "FAMILIAR_NAME"), (rate, "NEW_NAME")),
        "FAMILIAR_NAME": one_of(FAMILIAR_NAMES[: settings.n_names]),
        "NEW_NAME": alternatives((1, "SYLLABLE SYLLABLE SYLLABLE")),  # glued: "ba"+"ki"+"mo"
        "SYLLABLE": one_of(SYLLABLES),
        "NOUN": one_of(NOUNS[: settings.n_nouns]),
        "VERB": one_of(VERBS[: settings.n_verbs]),
        "PLACE": one_of(PLACES[: settings.n_places]),
        "ADJECTIVE": one_of(ADJECTIVES),
        "FEELING": one_of(FEELINGS),
    }


class _Compiled(NamedTuple):
    alternatives: list[Alternative]
    logps: list[float]  # ln chance of each alternative: computed once, shared by both directions
    cum_chances: list[float]  # for picking with one random number (the last is exactly 1)
    by_word: dict[str, int] | None  # word -> alternative, when each alternative is one word
    steps: list[tuple[tuple[str, str], ...]]  # each alternative's (kind, symbol) pairs


#: What the parser yields for each way a symbol matches: (end, choices made, names said so far).
_Match = tuple[int, tuple[Choice, ...], tuple[str, ...]]


class StoryGrammar:
    """The story language for some settings: it can generate text and parse it back.

    The generator and the parser read the same table (`story_rules`) and the same
    logarithms, so the nats the generator records for a sentence are exactly the nats of
    the derivation the parser finds.
    """

    def __init__(self, settings: StorySettings = StorySettings()):
        self.settings = settings
        self.rules = story_rules(settings)
        self._compiled = {}
        for name, alts in self.rules.items():
            literal = all(len(a.symbols) == 1 and self._kind(a.symbols[0]) == "word" for a in alts)
            cum_chances = list(accumulate(a.chance for a in alts))
            cum_chances[-1] = 1.0  # so a random number in [0, 1) always lands on an alternative
            self._compiled[name] = _Compiled(
                alts,
                [math.log(a.chance) for a in alts],
                cum_chances,
                {a.symbols[0]: i for i, a in enumerate(alts)} if literal else None,
                [tuple((self._kind(symbol), symbol) for symbol in a.symbols) for a in alts],
            )
        self._name_chance: dict[str, float] = {}

    def _kind(self, symbol: str) -> str:
        """What a symbol in a rule is: "rule", "reference" ("{he}"), "other name" or "word"."""
        if symbol in self.rules:
            return "rule"
        if symbol.startswith("{"):
            return "reference"
        return "other name" if symbol == "OTHER_NAME" else "word"

    # ---- the story so far ----------------------------------------------------------------

    @staticmethod
    def starts(state: StoryState) -> list[tuple[str, float]]:
        """How the next sentence may begin, with its chance: a new story or the same one.

        The first sentence of a text starts a story; every story has at least two
        sentences; after that, a new story starts with chance `NEW_STORY_CHANCE`.
        """
        if state.cast is None:
            return [("INTRO", 1.0)]
        if state.sentences == 1:
            return [("NEXT", 1.0)]
        return [("INTRO", NEW_STORY_CHANCE), ("NEXT", 1 - NEW_STORY_CHANCE)]

    def name_chance(self, name: str) -> float:
        """The chance that NAME comes out as this word (summed over all its derivations)."""
        if name not in self._name_chance:
            chances = [
                math.exp(math.fsum(c.logp for c in choices))
                for _, choices, _ in self._one("NAME", (name,), 0, None, ())
            ]
            self._name_chance[name] = math.fsum(chances)
        return self._name_chance[name]

    def _other_name_logp(self, first: str) -> float:
        """ln 1 / (1 - p(first)): a second name that must differ shares out first's chance."""
        return -math.log1p(-self.name_chance(first))

    # ---- generating ------------------------------------------------------------------------

    def _expand(self, rule: str, cast, rng, words, logps, names) -> str:
        """Write `rule` out into `words`, recording ln chance of every choice in `logps`.

        Returns the chosen alternative's tag (the cast's kind, for INTRO)."""
        compiled = self._compiled[rule]
        if len(compiled.logps) == 1:
            k = 0  # no choice to make: it costs nothing and uses no random number
        else:
            k = bisect_right(compiled.cum_chances, rng.random())
        logps.append(compiled.logps[k])
        if compiled.by_word is not None:  # a word list: the word is the choice
            words.append(compiled.alternatives[k].symbols[0])
            return ""
        into = [] if rule in GLUED else words
        for kind, symbol in compiled.steps[k]:
            if kind == "word":
                into.append(symbol)
            elif kind == "rule":
                self._expand(symbol, cast, rng, into, logps, names)
            elif kind == "reference":
                into.extend(cast.words(symbol))
            else:
                into.append(self._other_name(names, cast, rng, logps))
        if rule in GLUED:
            words.append("".join(into))
        if rule == "NAME":
            names.append(words[-1])
        return compiled.alternatives[k].tag

    def _other_name(self, names, cast, rng, logps) -> str:
        """A NAME other than the last one said: draw again until it differs, which gives each
        other name its chance scaled up by 1 / (1 - p(the name it must not be))."""
        first = names[-1]
        while True:
            drawn: list[str] = []
            drawn_logps: list[float] = []
            self._expand("NAME", cast, rng, drawn, drawn_logps, [])
            if drawn[0] != first:
                break
        names.append(drawn[0])
        logps.extend(drawn_logps)
        logps.append(self._other_name_logp(first))
        return drawn[0]

    def generate_sentence(
        self, state: StoryState, rng: random.Random
    ) -> tuple[str, list[float], StoryState]:
        """One sentence after `state`: its text, ln chance of each choice, and the new state."""
        logps: list[float] = []
        options = self.starts(state)
        if len(options) == 1:
            start = options[0][0]
        else:
            start = options[0][0] if rng.random() < options[0][1] else options[1][0]
            logps.append(math.log(dict(options)[start]))
        words: list[str] = []
        names: list[str] = []
        kind = self._expand(start, state.cast, rng, words, logps, names)
        if start == "INTRO":
            after = StoryState(Cast(kind, tuple(names)), 1)
        else:
            after = StoryState(state.cast, state.sentences + 1)
        return " ".join(words), logps, after

    def generate(self, n_sentences: int) -> "Stories":
        """`n_sentences` lines of stories, seeded by ``settings.seed``."""
        if not 1 <= n_sentences <= MAX_SENTENCES:
            raise ValueError(
                f"n_sentences must be between 1 and {MAX_SENTENCES:,}, not {n_sentences:,}"
            )
        rng = random.Random(self.settings.seed)
        state = StoryState()
        lines, clean_lines, nats, starts, names = [], [], [], [], []
        for i in range(n_sentences):
            sentence, logps, state = self.generate_sentence(state, rng)
            if state.sentences == 1:
                starts.append(i)
                names.append(state.cast.names)
            clean_lines.append(sentence)
            if self.settings.typo_rate > 0:
                sentence = _add_typos(sentence, self.settings.typo_rate, rng, logps)
            lines.append(sentence)
            nats.append(-math.fsum(logps))
        return Stories(
            tuple(lines), tuple(nats), tuple(starts), tuple(names), self.settings, tuple(clean_lines)
        )

    # ---- parsing ---------------------------------------------------------------------------

    def parse_all(self, sentence: str, state: StoryState = StoryState()) -> list[Derivation]:
        """Every way the grammar can make `sentence` after `state` (none, if it cannot).

        The parser tries every alternative of every rule, so finding exactly one derivation
        for every generated sentence is a real test that the grammar is unambiguous.

        >>> grammar = StoryGrammar(StorySettings(n_names=2, new_name_rate=0))
        >>> [derivation] = grammar.parse_all("once there was a girl named tobo .")
        >>> for choice in derivation.choices:  # ln 1, ln 2/5, ln 1 (no new names), ln 1/2
        ...     print(choice.rule, choice.picked, round(choice.logp, 4))
        SENTENCE INTRO 0.0
        INTRO girl -0.9163
        NAME FAMILIAR_NAME 0.0
        FAMILIAR_NAME tobo -0.6931
        >>> grammar.parse_all("once there was a girl named bob .")
        []
        """
        tokens = tuple(sentence.split(" "))
        if "" in tokens:  # empty text, or spaces at an end or doubled
            return []
        derivations = []
        for start, chance in self.starts(state):
            head = (Choice("SENTENCE", start, math.log(chance)),)
            for end, choices, names in self._one(start, tokens, 0, state.cast, ()):
                if end != len(tokens):
                    continue
                if start == "INTRO":
                    kind = next(c.picked for c in choices if c.rule == "INTRO")
                    after = StoryState(Cast(kind, names), 1)
                else:
                    after = StoryState(state.cast, state.sentences + 1)
                derivations.append(Derivation(sentence, head + choices, after))
        return derivations

    def parse(self, sentence: str, state: StoryState = StoryState()) -> Derivation | None:
        """The derivation of `sentence` after `state`, or None if the grammar cannot make it.

        >>> grammar = StoryGrammar(StorySettings(n_names=2, new_name_rate=0))
        >>> intro = grammar.parse("once there was a girl named tobo .")
        >>> round(intro.nats, 4)  # -ln(2/5 x 1/2): girl, then tobo of two names
        1.6094
        >>> grammar.parse("he was happy .", intro.after) is None  # tobo is a girl: "she"
        True
        >>> round(grammar.parse("she was happy .", intro.after).nats, 4)  # ln 4 + ln 2 + ln 6
        3.8712
        """
        derivations = self.parse_all(sentence, state)
        if len(derivations) > 1:
            raise AssertionError(f"ambiguous grammar: {sentence!r} has {len(derivations)} derivations")
        return derivations[0] if derivations else None

    def parse_lines(self, lines: Sequence[str]) -> list[Derivation | None]:
        """Parse a text line by line, each in the story its earlier lines built.

        A line that does not parse is None, and leaves the story as it was.
        """
        state, out = StoryState(), []
        for line in lines:
            derivation = self.parse(line, state)
            out.append(derivation)
            if derivation is not None:
                state = derivation.after
        return out

    def is_sentence(self, sentence: str) -> bool:
        """True if `sentence` can occur somewhere in some story (any cast, any names).

        For a model's own sentence, read without the story before it.

        >>> grammar = StoryGrammar()
        >>> grammar.is_sentence("they went to the park .")
        True
        >>> grammar.is_sentence("they went to the moon .")  # not one of the places
        False
        """
        states = [StoryState()] + [StoryState(Cast(kind, ()), 1) for kind in AGREEMENT]
        return any(self.parse_all(sentence, state) for state in states)

    def _one(self, symbol, tokens, i, cast, names) -> Iterator[_Match]:
        """Every way `symbol` can match tokens[i:...]: (end, choices made, names said so far)."""
        compiled = self._compiled.get(symbol)
        if compiled is not None and compiled.by_word is not None:  # a word list: look it up
            k = compiled.by_word.get(tokens[i]) if i < len(tokens) else None
            if k is not None:
                yield i + 1, (Choice(symbol, tokens[i], compiled.logps[k]),), names
        elif symbol in GLUED:
            if i < len(tokens):
                for alternative, logp in zip(compiled.alternatives, compiled.logps):
                    for choices in self._glued(alternative.symbols, tokens[i], 0):
                        yield i + 1, (Choice(symbol, alternative.picked, logp),) + choices, names
        elif compiled is not None:
            for alternative, logp in zip(compiled.alternatives, compiled.logps):
                head = (Choice(symbol, alternative.picked, logp),)
                matches = self._sequence(alternative.symbols, tokens, i, cast, names)
                for end, choices, said in matches:
                    if symbol == "NAME":  # a name is always one word: remember it
                        said = said + (tokens[i],)
                    yield end, head + choices, said
        elif symbol == "OTHER_NAME":
            for end, choices, said in self._one("NAME", tokens, i, cast, names):
                if said[-1] != names[-1]:
                    scale = Choice("OTHER_NAME", f"not {names[-1]}", self._other_name_logp(names[-1]))
                    yield end, choices + (scale,), said
        elif symbol.startswith("{"):
            if symbol == "{name}" and not cast.names:  # any names: read them from the sentence
                wanted = ("NAME", "and", "OTHER_NAME") if cast.kind == "friends" else ("NAME",)
                yield from self._sequence(wanted, tokens, i, cast, names)
                return
            words = cast.words(symbol)
            if tokens[i : i + len(words)] == words:
                yield i + len(words), (), names
        elif i < len(tokens) and tokens[i] == symbol:
            yield i + 1, (), names

    def _sequence(self, symbols, tokens, i, cast, names):
        if not symbols:
            yield i, (), names
            return
        for middle, first, said in self._one(symbols[0], tokens, i, cast, names):
            for end, rest, said_after in self._sequence(symbols[1:], tokens, middle, cast, said):
                yield end, first + rest, said_after

    def _glued(self, symbols, word: str, k: int) -> Iterator[tuple[Choice, ...]]:
        """Every way word[k:] splits into `symbols` (word lists), to the end of the word."""
        if not symbols:
            if k == len(word):
                yield ()
            return
        compiled = self._compiled[symbols[0]]
        for length in {len(w) for w in compiled.by_word}:
            piece = word[k : k + length]
            j = compiled.by_word.get(piece) if len(piece) == length else None
            if j is not None:
                for rest in self._glued(symbols[1:], word, k + length):
                    yield (Choice(symbols[0], piece, compiled.logps[j]),) + rest


# --------------------------------------------------------------------------------------------
# Typos


def _add_typos(sentence: str, rate: float, rng: random.Random, logps: list[float]) -> str:
    """Each word of 3+ letters: with chance `rate`, swap two neighbouring letters, drop one or
    double one (each kind 1/3, the place uniform). Every choice goes into `logps`."""
    words = sentence.split(" ")
    for w, word in enumerate(words):
        if len(word) < 3:
            continue
        if rng.random() >= rate:
            logps.append(math.log1p(-rate))
            continue
        logps.append(math.log(rate))
        kind = rng.randrange(3)
        logps.append(math.log(1 / 3))
        places = len(word) - 1 if kind == 0 else len(word)
        at = rng.randrange(places)
        logps.append(-math.log(places))
        if kind == 0:
            word = word[:at] + word[at + 1] + word[at] + word[at + 2 :]
        elif kind == 1:
            word = word[:at] + word[at + 1 :]
        else:
            word = word[: at + 1] + word[at] + word[at + 1 :]
        words[w] = word
    return " ".join(words)


# --------------------------------------------------------------------------------------------
# The result


@dataclass(frozen=True)
class Stories:
    """Generated text, one sentence a line, with the nats each sentence's choices cost.

    ``sentence_nats[i]`` is -ln of line i's chance given the lines before it in the same
    story (and, at a story's first line, the 1-in-4 choice to start a new story; the text's
    very first line must start one). With typos on it includes the typo choices.
    """

    lines: tuple[str, ...]
    sentence_nats: tuple[float, ...]
    story_starts: tuple[int, ...]  # position of each story's first line
    names: tuple[tuple[str, ...], ...]  # each story's cast, as the grammar chose it
    settings: StorySettings
    clean_lines: tuple[str, ...] = field(repr=False, default=())  # the lines before typos

    @property
    def upper_bound(self) -> bool:
        """True when typos are on: the figure is then an upper bound, not exact."""
        return self.settings.typo_rate > 0

    @property
    def entropy_kind(self) -> str:
        return "upper bound" if self.upper_bound else "exact"

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def total_nats(self) -> float:
        return math.fsum(self.sentence_nats)

    def by_story(self) -> tuple[tuple[str, ...], tuple[float, ...]]:
        """One line per story (its sentences joined by a space) and each story's nats.

        What the Train page trains on: a model's window never crosses a line, and a pronoun
        needs its name, said earlier in the same story, to be inside the window. A space
        replaces each newline, so the characters counted (`characters_in`) stay the same.
        """
        bounds = list(self.story_starts) + [len(self.lines)]
        lines = tuple(" ".join(self.lines[a:b]) for a, b in zip(bounds, bounds[1:]))
        nats = tuple(math.fsum(self.sentence_nats[a:b]) for a, b in zip(bounds, bounds[1:]))
        return lines, nats

    def bits_per_character(self, positions: Sequence[int] | None = None) -> float:
        """The floor in bits per character, for all lines or for the lines at `positions`.

        Characters are counted by `minillm.heldout.characters_in`: each line plus its
        newline. For a validation part, split by story so each held-out line keeps the
        story it depends on:

        >>> from minillm.heldout import split_lines
        >>> stories = generate_stories(StorySettings(seed=0), 2_000)
        >>> split = split_lines(stories.lines, 0.1, seed=0, story_starts=stories.story_starts)
        >>> round(stories.bits_per_character(), 3)
        0.345
        >>> round(stories.bits_per_character(split.valid_positions), 3)  # its own sample
        0.333
        """
        chosen = range(len(self.lines)) if positions is None else positions
        nats = math.fsum(self.sentence_nats[i] for i in chosen)
        return nats / characters_in([self.lines[i] for i in chosen]) / math.log(2)


def generate_stories(
    settings: StorySettings = StorySettings(), n_sentences: int = 1_000
) -> Stories:
    """`n_sentences` lines of stories in the language `settings` describe (seeded)."""
    return StoryGrammar(settings).generate(n_sentences)
