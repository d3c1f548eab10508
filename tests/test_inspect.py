"""minillm.inspect and the Generate / Attention chart builders: exact answers where known.

Reference answers: torch's own head-averaged weights (what the notebook printed), a fresh
`build_model` for epoch 0, a second run trained to the snapshot's epoch, numpy's SVD for
the PCA map, and hand-worked copied runs on the notebook's corpus.
"""

import json

import numpy as np
import pytest
import torch

from conftest import trained_experiment
from minillm import inspect
from minillm.charts.attention import attention_heatmap, embedding_scatter
from minillm.charts.generate import candidate_bars, marked_text_html
from minillm.charts.specs import with_data
from minillm.data import build_dataset
from minillm.experiment import Experiment, TrainSettings
from minillm.model import build_model
from minillm.sample import Candidate, Generation, Step, copied_spans, generate
from minillm.tokenizers import CharTokenizer

EPOCHS = 60  # snapshots every 6 epochs


@pytest.fixture(scope="module")
def notebook():
    return trained_experiment(epochs=EPOCHS)


@pytest.fixture(scope="module")
def causal():
    return trained_experiment(epochs=20, causal=True, loss_on="every", eos=True)


def ids_of(dataset, text):
    return dataset.tokenizer.encode(text)


def a_generation(dataset, prompt, written, stop=None):
    """A Generation as `generate` would return it, writing exactly `written` (words)."""
    steps = [Step(i, dataset.label(i), 1.0, [Candidate(i, 1.0)]) for i in ids_of(dataset, written)]
    if stop is not None:
        steps.append(Step(stop, dataset.label(stop), 1.0, [Candidate(stop, 1.0)]))
    return Generation(prompt, f"{prompt} {written}", written, steps, [], "eos" if stop else "length")


# --------------------------------------------------------------------------------------------
# Attention


def test_attention_of_the_notebooks_window(notebook):
    labels, weights = inspect.attention_maps(notebook.model, notebook.dataset, notebook.dataset.X[4].tolist())
    assert labels == ["the", "cat", "sat", "on", "the"]
    assert weights.shape == (2, 5, 5)


def test_every_attention_row_sums_to_one(notebook):
    for x in notebook.dataset.X.tolist():
        _, weights = inspect.attention_maps(notebook.model, notebook.dataset, x)
        np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-5)
        assert (weights >= 0).all()


def test_the_average_is_the_mean_of_the_heads_and_what_torch_returns_by_default(notebook):
    """The notebook's `attn_weights` (torch's default: averaged heads) is our average map."""
    model, dataset = notebook.model, notebook.dataset
    x = dataset.X[4:5]
    labels, weights = inspect.attention_maps(model, dataset, x[0].tolist())
    table = inspect.attention_table(labels, weights, causal=False)
    average = table[table["map"] == inspect.AVERAGE].sort_values(["position", "looks_at"])
    assert average["weight"].to_numpy().reshape(5, 5).tolist() == weights.astype(float).mean(axis=0).tolist()
    with torch.no_grad():  # the notebook's call: self.attn(h_norm, h_norm, h_norm)
        h_norm = model.ln1(model._embed(x))
        _, torch_average = model.attn(h_norm, h_norm, h_norm)
    np.testing.assert_allclose(weights.mean(axis=0), torch_average[0].numpy(), atol=1e-6)
    assert not np.allclose(weights[0], torch_average[0].numpy(), atol=1e-3), "head 1 is not the average"


def test_with_the_causal_mask_the_upper_triangle_is_exactly_zero(causal):
    dataset = causal.dataset
    for x in dataset.X.tolist()[:10]:
        labels, weights = inspect.attention_maps(causal.model, dataset, x)
        upper = np.triu(np.ones((5, 5), dtype=bool), 1)
        assert (weights[:, upper] == 0.0).all()
        assert (weights[:, ~upper] > 0).all()
        table = inspect.attention_table(labels, weights, causal=True)
        assert (table["hidden"] == (table["looks_at"] > table["position"])).all()
        assert set(table.loc[table["hidden"], "cell"]) == {"hidden"}
        assert (table.loc[table["hidden"], "weight"] == 0.0).all()


def test_without_the_mask_nothing_is_hidden(notebook):
    labels, weights = inspect.attention_maps(notebook.model, notebook.dataset, [13, 3])
    assert labels == ["PAD", "PAD", "PAD", "the", "cat"]  # left-padded like the dataset
    table = inspect.attention_table(labels, weights, causal=False)
    assert not table["hidden"].any()
    assert len(table) == 3 * 25 and list(table["map"].unique()) == ["head 1", "head 2", inspect.AVERAGE]


def test_a_long_context_keeps_its_last_block_size_tokens(notebook):
    dataset = notebook.dataset
    ids, unknown = inspect.typed_context(dataset, "the cat sat on the mat zebra slept")
    assert unknown == ["zebra"] and len(ids) == 7
    labels, _ = inspect.attention_maps(notebook.model, dataset, ids)
    assert labels == ["sat", "on", "the", "mat", "slept"]


def test_snapshot_replay_at_epoch_0_equals_a_fresh_model_with_the_same_seed(notebook):
    context = notebook.dataset.X[4].tolist()
    fresh = build_model(notebook.model.config, notebook.settings.seed)
    expected = inspect.attention_maps(fresh, notebook.dataset, context)[1]
    replayed = inspect.attention_at(notebook, 0, context)[1]
    assert np.array_equal(replayed, expected)
    live = inspect.attention_maps(notebook.model, notebook.dataset, context)[1]
    assert not np.allclose(replayed, live, atol=1e-3), "training changed nothing?"


def test_snapshot_replay_mid_training_equals_a_run_stopped_there(notebook):
    assert 30 in notebook.trainer.snapshots
    context = notebook.dataset.X[4].tolist()
    stopped = Experiment(TrainSettings(epochs=EPOCHS))
    stopped.trainer.run(30)
    expected = inspect.attention_maps(stopped.model, stopped.dataset, context)[1]
    np.testing.assert_allclose(inspect.attention_at(notebook, 30, context)[1], expected, atol=1e-6)


def test_replay_never_touches_the_live_model(notebook):
    before = {k: v.clone() for k, v in notebook.model.state_dict().items()}
    replay = inspect.model_at(notebook, 0)
    assert replay is not notebook.model
    inspect.attention_at(notebook, 0, [13])
    inspect.embedding_map(replay, notebook.dataset)
    after = notebook.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    now = inspect.model_at(notebook, notebook.trainer.epoch)  # the live epoch: a copy as well
    assert now is not notebook.model and same_weights(now, notebook.model)


def same_weights(a, b) -> bool:
    wa, wb = a.state_dict(), b.state_dict()
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_replay_epochs_and_a_missing_epoch(notebook):
    assert inspect.replay_epochs(notebook) == list(range(0, EPOCHS + 1, 6))
    with pytest.raises(KeyError, match="no weights kept for epoch 7"):
        inspect.model_at(notebook, 7)


def test_replay_epochs_include_a_paused_run():
    paused = Experiment(TrainSettings(epochs=EPOCHS))
    paused.trainer.run(8)
    assert inspect.replay_epochs(paused) == [0, 6, 8]
    assert same_weights(inspect.model_at(paused, 8), paused.model)


def test_a_replay_keeps_every_epoch_it_lists_while_the_run_trains_on():
    """The Attention page lists the epochs, then draws one: meanwhile the run may train on
    (another thread), so its epoch moves past 8 and old snapshots are thinned out. Reading
    the trainer twice then asked for weights it no longer had (KeyError: 'no weights kept
    for epoch 8')."""
    run = Experiment(TrainSettings(epochs=300))  # a snapshot every 30 epochs
    run.trainer.run(8)
    replay = inspect.replay(run)
    assert replay.epochs == (0, 8)
    run.trainer.run(292)  # on to the end: 11 snapshots kept, none at 8
    assert 8 not in run.trainer.snapshots
    stopped = Experiment(TrainSettings(epochs=300))
    stopped.trainer.run(8)
    assert same_weights(replay.model(8), stopped.model)  # the weights of epoch 8, as listed
    assert same_weights(replay.model(0), build_model(run.model.config, run.settings.seed))
    assert replay.epochs == (0, 8)  # what was listed stays listed
    with pytest.raises(KeyError, match="no weights kept for epoch 30"):
        replay.model(30)  # kept since, but not when this replay was read


def test_window_choices_list_each_context_once(notebook):
    dataset = notebook.dataset
    choices = inspect.window_choices(dataset)
    assert len(choices) == 19  # 25 windows, the "PAD PAD PAD PAD the" start 6 times, ...
    assert sorted(n for c in choices for n in c.windows) == list(range(len(dataset)))
    assert choices[0].label == "PAD PAD PAD PAD the → cat / dog"
    assert choices[1].label == "PAD PAD PAD the cat → sat / chased / slept"
    assert choices[inspect.notebook_choice(choices)].label == "the cat sat on the → mat"


def test_window_choices_can_stop_early_but_still_name_every_next_token(notebook):
    first = inspect.window_choices(notebook.dataset, limit=2)
    assert [c.label for c in first] == [c.label for c in inspect.window_choices(notebook.dataset)[:2]]
    assert first[0].windows == (0, 5, 10, 14, 18, 23)  # its later windows are still counted


# --------------------------------------------------------------------------------------------
# Embeddings


def test_embedding_map_has_one_row_per_id_and_is_the_pca(notebook):
    model, dataset = notebook.model, notebook.dataset
    points = inspect.embedding_map(model, dataset)
    assert list(points["id"]) == list(range(dataset.vocab_size)) == list(range(15))
    assert list(points["token"])[-1] == "PAD" and list(points["kind"]) == ["word"] * 14 + ["PAD"]
    table = model.token_embed.weight.detach().double().numpy()
    centred = table - table.mean(axis=0)
    _, s, vh = np.linalg.svd(centred, full_matrices=False)
    reference = centred @ vh[:2].T  # numpy's PCA, up to the sign of each axis
    np.testing.assert_allclose(np.abs(points[["x", "y"]].to_numpy()), np.abs(reference), atol=1e-9)
    np.testing.assert_allclose(points.attrs["explained"], s[:2] ** 2 / (s**2).sum())
    assert points.attrs["explained"][0] >= points.attrs["explained"][1]


def test_embedding_map_names_eos_and_drops_unused_ids(causal):
    dataset = causal.dataset
    points = inspect.embedding_map(causal.model, dataset)
    assert dict(zip(points["token"], points["kind"]))["EOS"] == "EOS"
    assert inspect.map_ids(dataset) == list(range(dataset.vocab_size))
    assert inspect.map_ids(dataset, limit=2) == [3, 13, dataset.pad_id, dataset.eos_id]  # cat, the


def test_character_tokens_show_their_spaces():
    dataset = build_dataset(["a b"], CharTokenizer.fit(["a b"]), 3)
    assert [inspect.display_label(dataset, i) for i in range(4)] == ["␣", "a", "b", "PAD"]


# --------------------------------------------------------------------------------------------
# Generation: copied runs


def test_copied_runs_on_a_known_example(notebook):
    """"the cat" + "sat on the mat slept on the rug": the first sentence word for word, then
    "slept on the" (from "the cat slept on the mat"), then "rug" on its own."""
    dataset = notebook.dataset
    generation = a_generation(dataset, "the cat", "sat on the mat slept on the rug")
    assert inspect.marked_generation(generation, dataset) == [
        ("the cat sat on the mat", True), (" ", False), ("slept on the", True), (" ", False),
        ("rug", False),
    ]
    assert inspect.copied_count(generation, dataset) == (7, 8)


def test_two_copied_runs_in_a_row_stay_apart(notebook):
    dataset = notebook.dataset
    generation = a_generation(dataset, "the cat", "sat on the mat slept on the mat")
    assert inspect.marked_generation(generation, dataset) == [
        ("the cat sat on the mat", True), (" ", False), ("slept on the mat", True)]


def test_a_prompt_alone_is_not_copied(notebook):
    dataset = notebook.dataset
    generation = a_generation(dataset, "the cat sat on", "barked")
    assert inspect.marked_generation(generation, dataset) == [("the cat sat on barked", False)]
    assert inspect.copied_count(generation, dataset) == (0, 1)


def test_eos_is_not_part_of_the_text(causal):
    dataset = causal.dataset
    generation = a_generation(dataset, "the dog", "chased the ball", stop=dataset.eos_id)
    assert inspect.marked_generation(generation, dataset) == [("the dog chased the ball", True)]
    assert inspect.copied_count(generation, dataset) == (3, 3)


def test_marked_generation_of_a_real_generation_joins_to_its_text(notebook):
    for prompt in inspect.NOTEBOOK_PROMPTS:
        generation = generate(notebook.model, notebook.dataset, prompt, 15, seed=3)
        segments = inspect.marked_generation(generation, notebook.dataset)
        assert "".join(text for text, _ in segments) == generation.text
        copied, written = inspect.copied_count(generation, notebook.dataset)
        assert written == 15 and 0 <= copied <= written


@pytest.mark.parametrize("seed", range(40))
def test_copied_runs_are_exactly_copied_spans(seed):
    """The fast search gives sample.copied_spans' answer (the reference) on random corpora."""
    rng = np.random.default_rng(seed)
    vocab = int(rng.integers(2, 8))
    sentences = [rng.integers(0, vocab, int(rng.integers(1, 12))).tolist() for _ in range(int(rng.integers(1, 6)))]
    generated = rng.integers(0, vocab, int(rng.integers(0, 25))).tolist()
    for min_len in (1, 2, 3, 5):
        assert inspect.copied_runs(generated, sentences, min_len) == copied_spans(generated, sentences, min_len)


def test_copied_runs_handle_ids_past_the_surrogates_and_long_lines():
    big = [0xD7FE, 0xD7FF, 0xD800, 0xE000, 60_000]
    assert inspect.copied_runs(big, [big], 3) == copied_spans(big, [big], 3) == [(0, 5)]
    line = list(range(5_000)) * 2  # copied_spans would take minutes on this one line
    assert inspect.copied_runs(list(range(100, 160)), [line], 3) == [(0, 60)]


def test_candidates_table_adds_a_pick_from_the_long_tail(notebook):
    dataset = notebook.dataset
    sat, chased, mailman = ids_of(dataset, "sat chased mailman")
    step = Step(mailman, "mailman", 0.001, [Candidate(sat, 0.6), Candidate(chased, 0.3)])
    generation = Generation("the cat", "the cat mailman", "mailman", [step])
    table = inspect.candidates_table(generation, dataset)
    assert list(table["candidate"]) == ["sat", "chased", "mailman"]
    assert list(table["token_id"]) == [sat, chased, mailman]
    assert list(table["picked"]) == [False, False, True]
    assert table["panel"].iloc[0] == "step 1: picked “mailman”"


# --------------------------------------------------------------------------------------------
# Prompts


@pytest.mark.parametrize("text, cleaned, n_notes, problem", [
    ("the cat", "the cat", 0, False),
    ("", "", 0, True),
    ("   \n\t", "", 0, True),
    ("\x00\x1b", "", 1, True),
    ("the\x00cat", "the cat", 1, False),
    ("🐱 the cat", "🐱 the cat", 0, False),
    ("x" * 10_000, "x" * 200, 1, False),
])
def test_clean_prompt(text, cleaned, n_notes, problem):
    prompt = inspect.clean_prompt(text)
    assert prompt.text == cleaned
    assert len(prompt.notes) == n_notes
    assert (prompt.problem is not None) == problem


def test_unknown_words_are_named():
    assert inspect.describe_unknown([]) == ""
    assert inspect.describe_unknown(["zebra"]) == "The model has never seen the word 'zebra', so it was left out."
    assert inspect.describe_unknown(["zebra", "lion", "🐱"]) == (
        "The model has never seen the words 'zebra', 'lion' and '🐱', so they were left out.")
    many = inspect.describe_unknown([f"w{n}" for n in range(12)], shown=3)
    assert many.endswith("'w0', 'w1', 'w2' and 9 more, so they were left out.")


def test_prompt_suggestions(notebook, causal):
    assert inspect.prompt_suggestions(notebook.dataset) == list(inspect.NOTEBOOK_PROMPTS)
    country = Experiment(TrainSettings(lines=("my old truck", "my dog sleeps", "the road home"), epochs=1))
    assert inspect.prompt_suggestions(country.dataset) == ["my old", "my dog", "the road"]


# --------------------------------------------------------------------------------------------
# Charts


def test_marked_text_html_escapes_everything():
    html = marked_text_html([("<img src=x onerror=alert(1)>", False), (" ", False), ("<b>x</b> & y", True)])
    assert "<img" not in html and "<b>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert '<span class="mll-copied">&lt;b&gt;x&lt;/b&gt; &amp; y</span>' in html


def test_heatmap_marks_hidden_cells_and_labels_positions(causal):
    labels, weights = inspect.attention_maps(causal.model, causal.dataset, [13, 3])
    table = inspect.attention_table(labels, weights, causal=True)
    spec = attention_heatmap(table[table["map"] == "head 1"], "head 1").to_dict()
    text = json.dumps(spec)
    assert "datum.hidden" in text and "#D1D5DB" in text  # grey cells
    encoding = spec["layer"][0]["encoding"]
    for axis in ("x", "y"):  # tokens in order on both axes: position n shows its token
        assert encoding[axis]["axis"]["labelExpr"] == '["PAD", "PAD", "PAD", "the", "cat"][datum.value]'
    assert (encoding["x"]["title"], encoding["y"]["title"]) == ("looks at →", "position asking")
    values = next(iter(spec["datasets"].values()))
    assert sum(row["cell"] == "hidden" for row in values) == 10


def test_other_charts_build(notebook):
    generation = generate(notebook.model, notebook.dataset, "the cat", 4, seed=1)
    bars = candidate_bars(inspect.candidates_table(generation, notebook.dataset)).to_dict()
    assert bars["columns"] == 3 and bars["resolve"] == {"scale": {"y": "independent"}}
    scatter = embedding_scatter(inspect.embedding_map(notebook.model, notebook.dataset)).to_dict()
    assert scatter["layer"][0]["encoding"]["x"]["title"] == "PCA axis 1"
    assert scatter["layer"][1]["encoding"]["text"]["field"] == "token"  # every dot is labelled


def normalised(spec: dict) -> dict:
    """A spec with its one dataset renamed, so two specs compare by what they draw."""
    (rows,) = spec["datasets"].values()
    return {**spec, "data": {"name": "t"}, "datasets": {"t": json.loads(json.dumps(rows))}}


def test_with_data_redraws_a_built_chart_exactly_as_building_it_again(notebook):
    """The pages build a chart once per layout and swap the numbers in: same spec as a rebuild."""
    dataset, context = notebook.dataset, notebook.dataset.X[4].tolist()
    early = inspect.attention_table(*inspect.attention_at(notebook, 0, context), causal=False)
    late = inspect.attention_table(*inspect.attention_at(notebook, EPOCHS, context), causal=False)
    for name in ("head 1", inspect.AVERAGE):
        template = attention_heatmap(early[early["map"] == name], name).to_dict()
        rebuilt = attention_heatmap(late[late["map"] == name], name).to_dict()
        assert normalised(with_data(template, late[late["map"] == name])) == normalised(rebuilt)
    assert "datasets" in template and len(template["datasets"]) == 1  # the template is untouched

    first = inspect.embedding_map(inspect.model_at(notebook, 0), dataset)
    last = inspect.embedding_map(notebook.model, dataset)
    assert normalised(with_data(embedding_scatter(first).to_dict(), last)) == \
        normalised(embedding_scatter(last).to_dict())

    one = inspect.candidates_table(generate(notebook.model, dataset, "the cat", 6, seed=1), dataset)
    two = inspect.candidates_table(generate(notebook.model, dataset, "the dog", 6, seed=2), dataset)
    assert normalised(with_data(candidate_bars(one).to_dict(), two)) == normalised(candidate_bars(two).to_dict())


def test_with_data_refuses_a_spec_without_one_named_dataset():
    with pytest.raises(ValueError, match="one top-level named dataset"):
        with_data({"mark": "bar", "data": {"values": []}}, None)
