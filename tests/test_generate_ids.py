"""Generation with a byte-level BPE: candidates are known by their id, the text is decoded once.

A BPE trained with few merges keeps emoji as several tokens, each only part of a character;
decoded alone each reads "\ufffd". So labels repeat within one step, and a copied run may end
inside an emoji. The reference answers are the tokenizer's own `decode` of all the ids and
`Dataset.label`, which shows how many different ids read the same.
"""

import pytest

from minillm import inspect
from minillm.bpe import train_bpe
from minillm.charts.generate import candidate_bars
from minillm.experiment import Experiment, TrainSettings
from minillm.sample import Candidate, Generation, Step, generate

#: Seven animals, seven emoji: they share their first bytes (F0 9F 90 ..), not their last.
EMOJI_LINES = (
    "the cat 🐱 and the dog 🐶",
    "the mouse 🐭 and the hamster 🐹",
    "the rabbit 🐰 and the bear 🐻",
    "the fox 🦊 and the cat 🐱",
)
MERGES = 20  # few: the emoji stay split into partial-character tokens
SEEDS = range(12)


def emoji_experiment(epochs: int = 150) -> Experiment:
    """A model on a byte-level BPE whose tokens cut the emoji into pieces, trained."""
    bpe = train_bpe("\n".join(EMOJI_LINES), MERGES).encoding(MERGES)
    experiment = Experiment(TrainSettings(lines=EMOJI_LINES, corpus_name="emoji animals",
                                          tokenizer="bpe", epochs=epochs), bpe=bpe)
    experiment.trainer.run()
    return experiment


@pytest.fixture(scope="module")
def emoji():
    return emoji_experiment()


def partial(dataset, token_id: int) -> bool:
    """The token holds only part of a character (it reads "\ufffd" on its own)."""
    if token_id in (dataset.pad_id, dataset.eos_id):
        return False
    try:
        dataset.tokenizer.piece_bytes(token_id).decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@pytest.fixture(scope="module")
def written(emoji) -> list[Generation]:
    """What the emoji model writes after "the", one generation per seed."""
    return [generate(emoji.model, emoji.dataset, "the", max_new_tokens=20, seed=seed)
            for seed in SEEDS]


def test_the_corpus_really_has_tokens_that_read_the_same(emoji, written):
    """The setting the other tests need: several different ids read "\ufffd" in one step."""
    dataset = emoji.dataset
    same = [step for g in written for step in g.steps
            if len({dataset.label(c.token_id) for c in step.candidates}) < len(step.candidates)]
    assert same, "no step weighed two tokens that read the same: the tests below prove nothing"


def test_each_step_marks_exactly_its_own_token_as_picked(emoji, written):
    dataset = emoji.dataset
    for generation in written:
        table = inspect.candidates_table(generation, dataset)
        for step, (n, rows) in zip(generation.steps, table.groupby("step", sort=True)):
            assert rows["token_id"].is_unique, rows  # one row per candidate id
            assert rows["candidate"].is_unique, rows  # and one bar each on the chart's axis
            picked = rows[rows["picked"]]
            assert len(picked) == 1, rows
            assert picked["token_id"].iloc[0] == step.token_id
            assert picked["probability"].iloc[0] == pytest.approx(step.probability)


def test_candidates_carry_their_ids(written):
    for generation in written:
        for step in generation.steps:
            ids = [c.token_id for c in step.candidates]
            assert len(set(ids)) == len(ids)
            assert all(isinstance(c, Candidate) for c in step.candidates)
            probabilities = [c.probability for c in step.candidates]
            assert probabilities == sorted(probabilities, reverse=True)


def test_tokens_that_read_the_same_get_different_labels(emoji, written):
    """Part of a character shows as its bytes, and a label that still repeats gets its id."""
    dataset = emoji.dataset
    seen = 0
    for generation in written:
        table = inspect.candidates_table(generation, dataset)
        for _, rows in table.groupby("step"):
            for token_id, label in zip(rows["token_id"], rows["label"]):
                if partial(dataset, token_id):
                    assert "\ufffd" not in label and "⟨" in label, label
                    seen += 1
    assert seen


def test_a_label_that_repeats_gets_its_id_on_the_axis():
    """A corpus word "PAD" and the PAD token read the same: both bars stay, each with its id."""
    from minillm.data import build_dataset
    from minillm.tokenizers import WordTokenizer

    lines = ["the PAD cat", "the cat sat"]
    dataset = build_dataset(lines, WordTokenizer.fit(lines), 3)
    word_pad, cat = dataset.tokenizer.encode("PAD cat")
    step = Step(dataset.pad_id, "PAD", 0.3,
                [Candidate(cat, 0.4), Candidate(word_pad, 0.3), Candidate(dataset.pad_id, 0.3)])
    table = inspect.candidates_table(Generation("the", "the", "", [step]), dataset)
    assert list(table["label"]) == ["cat", "PAD", "PAD"]
    assert list(table["candidate"]) == ["cat", f"PAD (id {word_pad})", f"PAD (id {dataset.pad_id})"]
    assert list(table["picked"]) == [False, False, True]


def test_what_the_model_wrote_is_decoded_once(emoji, written):
    dataset = emoji.dataset
    emoji_seen = False
    for generation in written:
        segments = inspect.marked_generation(generation, dataset)
        ids = list(dataset.tokenizer.encode(generation.prompt)) + [
            s.token_id for s in generation.steps if s.token_id not in (dataset.pad_id, dataset.eos_id)]
        text = dataset.tokenizer.decode(ids)
        assert "".join(part for part, _ in segments) == text == generation.text
        assert all(part for part, _ in segments)  # no empty part
        whole = [part for part, _ in segments if "\ufffd" not in part]
        emoji_seen = emoji_seen or any(ch in part for part in whole for ch in "🐱🐶🐭🐹🐰🐻🦊")
        # a "\ufffd" may only be where the whole text has one (bytes the model left unfinished)
        assert sum(part.count("\ufffd") for part, _ in segments) == text.count("\ufffd")
    assert emoji_seen


def test_a_copied_run_that_ends_inside_an_emoji_shows_the_emoji_whole(emoji):
    """"the dog 🐭": the corpus has "dog 🐶" and "mouse 🐭", emoji that share their first bytes.
    The copied run " dog" + those bytes ends inside 🐭; per-part decoding drew "\ufffd\ufffd"."""
    dataset = emoji.dataset
    tokenizer = dataset.tokenizer
    prompt_ids = tokenizer.encode("the")
    new_ids = tokenizer.encode("the dog 🐭")[len(prompt_ids):]
    ids = prompt_ids + new_ids
    cut_inside = [b for _, b in inspect.copied_runs(ids, dataset.sentences)
                  if b < len(ids) and partial(dataset, ids[b - 1])]
    assert cut_inside, "the copied run must end inside the emoji for this test to mean anything"
    steps = [Step(i, dataset.label(i), 1.0, [Candidate(i, 1.0)]) for i in new_ids]
    generation = Generation("the", "the dog 🐭", " dog 🐭", steps)
    segments = inspect.marked_generation(generation, dataset)
    assert "".join(part for part, _ in segments) == "the dog 🐭"
    assert not any("\ufffd" in part for part, _ in segments)
    assert any("🐭" in part for part, _ in segments)
    assert any(copied for _, copied in segments)  # " dog" is copied


def test_decoded_spans_cover_the_text_once():
    from minillm.tokenizers import ByteTokenizer, CharTokenizer, WordTokenizer

    byte = ByteTokenizer()
    ids = list("a🐱b".encode())
    text, spans = inspect.decoded_spans(byte, ids)
    assert text == byte.decode(ids) == "a🐱b"
    assert [text[a:b] for a, b in spans] == ["a", "", "", "", "🐱", "b"]
    cut = ids[:3]  # the emoji's first two bytes only
    assert inspect.decoded_spans(byte, cut)[0] == byte.decode(cut)
    words = WordTokenizer.fit(["the cat sat"])
    text, spans = inspect.decoded_spans(words, words.encode("the cat"))
    assert text == "the cat" and [text[a:b] for a, b in spans] == ["the", "cat"]
    chars = CharTokenizer.fit(["é🐱"])
    text, spans = inspect.decoded_spans(chars, chars.encode("🐱é"))
    assert [text[a:b] for a, b in spans] == ["🐱", "é"]


def test_the_chart_keeps_repeated_labels_apart_and_sorts_as_vega_lite_can(emoji, written):
    dataset = emoji.dataset
    table = inspect.candidates_table(written[0], dataset)
    spec = candidate_bars(table).to_dict()
    bars, text = spec["spec"]["layer"]
    for layer in (bars, text):
        y = layer["encoding"]["y"] if "y" in layer.get("encoding", {}) else spec["spec"]["encoding"]["y"]
        assert y["field"] == "candidate"
        # the layers share the axis: Vega-Lite merges their sort only with min, max or count
        # (otherwise it warns "conflicting sort properties" and drops the order)
        assert y["sort"].get("op") in ("min", "max", "count")
    assert "datum.picked" in str(bars)


def test_prompt_suggestions_do_not_end_inside_a_character(emoji):
    """A sentence that starts with an emoji: its first two tokens are only part of it."""
    from minillm.data import build_dataset

    lines = ["🦊 the fox", "🐻 the bear", "the cat 🐱"]
    dataset = build_dataset(lines, emoji.dataset.tokenizer, 3)
    assert partial(dataset, dataset.sentences[0][1])  # else this test proves nothing
    assert inspect.prompt_suggestions(dataset) == ["🦊", "🐻", "the cat"]
