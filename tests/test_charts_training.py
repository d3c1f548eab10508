"""minillm.charts.training: the loss chart must not mislead (issue 11, "Charts that mislead").

Earlier runs on other data keep their own start and floor; every label sits where the curves
are not, on a halo; the legend says settings in words, short enough for a phone.
"""

import json

import pytest

from minillm.charts.training import (CURRENT_PREFIX, LABEL_GAP, label_places, loss_chart,
                                     past_references, reference_rules, runs_frame)
from minillm.experiment import TrainSettings

WORDS = {"label": "words", "history": [5.27, 4.9, 4.1, 3.6, 3.0, 2.2], "floor": 0.12,
         "start_loss": 5.2}  # a words run on a big vocabulary: high start, low floor
CHARS = [3.3, 2.9, 2.5, 2.0, 1.6, 1.4]  # the current run: characters, ln|V| 3.3, floor 1.1


def spec(runs, **kw):
    kw.setdefault("floor", 1.1)
    kw.setdefault("start_loss", 3.3)
    return loss_chart(runs, epochs=6, **kw).to_dict()


def layers(spec_dict, mark):
    return [layer for layer in spec_dict["layer"] if layer.get("mark", {}).get("type") == mark]


def y_top(spec_dict):
    line = layers(spec_dict, "line")[0]
    return line["encoding"]["y"]["scale"]["domain"][1]


def datasets_with(spec_dict, column):
    return [rows for rows in spec_dict["datasets"].values() if rows and column in rows[0]]


def test_an_earlier_run_that_started_higher_is_not_cut_off():
    past = [WORDS]
    chart = spec(runs_frame(CHARS, "characters", past), past=past_references(past))
    assert y_top(chart) >= max(WORDS["history"])  # 5.27 is drawn, not cut at 1.3 x 3.3


def test_an_earlier_run_on_other_data_has_its_own_floor_in_its_colour():
    past = [WORDS]
    runs = runs_frame(CHARS, "characters", past)
    chart = spec(runs, past=past_references(past))
    rules = next(rows for rows in datasets_with(chart, "what") if len(rows) > 2)
    mine = {r["loss"]: r for r in rules}
    assert mine[0.12]["run"] == "1 run ago: words" and mine[1.1]["run"] == "this run"
    colours = layers(chart, "line")[0]["encoding"]["color"]["scale"]
    words_colour = dict(zip(colours["domain"], colours["range"]))["1 run ago: words"]
    assert mine[0.12]["color"] == words_colour  # the floor is that run's, in its colour
    assert mine[0.12]["label"] == "1 run ago: floor = 0.1200"  # labelled per run
    # the same data (same floor): no second rule
    same = reference_rules(1.1, 3.3, past=[("1 run ago: x", 1.1, 3.3)])
    assert len(same) == 2


def test_the_floor_labels_sit_left_where_the_curve_is_not_on_a_halo():
    chart = spec(runs_frame(CHARS, "characters", [WORDS]), past=past_references([WORDS]),
                 held_out=True, heldout_floor=1.25)
    texts = [layer for layer in layers(chart, "text") if "data" in layer]  # the rules' labels
    rows = {id(layer): chart["datasets"][layer["data"]["name"]] for layer in texts}
    floors = [r for layer in texts for r in rows[id(layer)] if "floor" in r["label"]]
    assert floors and all(r["x"] == 0 and r["side"] == "left" for r in floors)
    assert all(r["at"] > r["loss"] for r in floors)  # above its rule: the curve ends there
    # a white halo under each label: a text layer stroked white, drawn first
    halos = [layer for layer in texts if layer["mark"].get("stroke") == "white"]
    assert len(halos) == len(texts) // 2 and all(layer["mark"]["strokeWidth"] >= 4 for layer in halos)
    lnv = next(r for layer in texts for r in rows[id(layer)] if r["label"].startswith("ln|V|"))
    assert lnv["side"] == "right" and lnv["at"] < lnv["loss"]  # under it: the curve left it


def test_close_floors_get_labels_that_do_not_overlap():
    top, height = 4.0, 420
    places = label_places([3.0, 1.0, 1.02, 1.05, 0.99], top, height)
    centres = sorted(at / top * height for side, at in places if side == "left")
    assert all(b - a >= LABEL_GAP - 0.1 for a, b in zip(centres, centres[1:]))


def test_the_floor_label_on_a_floor_near_zero_stays_off_the_curves_end():
    """The old chart put a low floor's label above its rule at the right end: on the curve."""
    chart = spec(runs_frame([3.0, 1.0, 0.2, 0.1], "x"), floor=0.05, start_loss=3.0)
    rules = next(rows for rows in datasets_with(chart, "side"))
    floor = next(r for r in rules if r["label"].startswith("floor"))
    assert floor["x"] == 0


def test_the_curves_last_point_is_labelled_from_the_curves_own_rows():
    chart = spec(runs_frame(CHARS[:4], "x"))
    head = [layer for layer in chart["layer"] if any(
        "max(epoch)" in str(t) or t.get("joinaggregate") for t in layer.get("transform", []))]
    assert {layer["mark"]["type"] for layer in head} == {"circle", "text"}
    assert all("data" not in layer for layer in head)  # the layer's rows: the curve's


@pytest.mark.parametrize("settings, label", [
    (TrainSettings(corpus_name="your sentences", tokenizer="character", eos=True, loss_on="every"),
     "your sentences · characters · EOS · every position"),
    (TrainSettings(block_size=8, lr=0.01, epochs=150), "block 8 · lr 0.01 · 150 epochs"),
    (TrainSettings(valid_share=0.2, causal=True, n_heads=4), "4 heads · causal mask · 20% held out"),
    (TrainSettings(), "notebook settings"),
])
def test_legends_say_settings_in_words(settings, label):
    assert settings.label() == label
    assert "=" not in settings.label()


def test_the_legend_fits_a_phone():
    runs = runs_frame(CHARS, TrainSettings(corpus_name="your sentences", tokenizer="character",
                                           eos=True, loss_on="every").label(), [WORDS],
                      valid_history=[(1, 3.4)])
    legend = layers(spec(runs), "line")[0]["encoding"]["color"]["legend"]
    assert legend["orient"] == "bottom" and legend["labelLimit"] <= 330
    # each name's legend lines, looked up by the legend: at most 30 characters (~260 px)
    table = json.loads(legend["labelExpr"].split("[datum.label]")[0])
    assert set(table) == set(runs["run"])
    assert table["this run: your sentences · characters · EOS · every position"] == [
        "this run: your sentences", "characters · EOS", "every position"]
    assert max(len(line) for lines in table.values() for line in lines) <= 30


def test_the_current_run_is_still_first_and_thick():
    runs = runs_frame(CHARS, "x", [WORDS])
    assert runs["run"].iloc[0] == f"{CURRENT_PREFIX}x"
