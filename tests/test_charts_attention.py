"""minillm.charts.attention: every heat-map column labelled, one colour-blind-safe ramp with the
value on hover, an embedding map that names only what can be read (issue 11)."""

import json

import pandas as pd

from minillm.charts.attention import (HEAT_SCHEME, attention_heatmap, embedding_scatter,
                                      readable_labels, short_label, variance_sentence)
from minillm.inspect import attention_table

# ordered in lightness and rated colour-blind safe (the old "blues" is one hue)
SAFE_SCHEMES = {"viridis", "cividis", "magma", "inferno", "plasma", "yellowgreenblue"}
LONG = ["Picture-perfect", "skies", "stretched", "endlessly", "around", "the", "village", "green"]


def heatmap_spec(labels, heads=2):
    import numpy as np

    weights = np.full((heads, len(labels), len(labels)), 1 / len(labels))
    table = attention_table(labels, weights, causal=True)
    return attention_heatmap(table[table["map"] == "head 1"], "head 1").to_dict()


def axes(spec):
    enc = spec["layer"][0]["encoding"]
    return enc["x"]["axis"], enc["y"]["axis"]


def test_every_column_is_labelled_even_with_long_words():
    x_axis, y_axis = axes(heatmap_spec(LONG))
    for axis in (x_axis, y_axis):
        assert axis["labelOverlap"] is False  # Vega drops overlapping labels by default
    shown = json.loads(x_axis["labelExpr"].removesuffix("[datum.value]"))
    assert shown == [short_label(word) for word in LONG]  # one label for each column
    assert shown[0] == "Picture…" and all(len(label) <= 8 for label in shown)
    assert x_axis["labelAngle"] == -45  # eight long columns: turned, not dropped
    x_axis, _ = axes(heatmap_spec(["the", "old", "truck", "rolls", "down"]))
    assert x_axis["labelAngle"] == -45  # 5 letters x 5 columns would run together ("truckrolls")
    x_axis, _ = axes(heatmap_spec(["PAD", "PAD", "the"]))
    assert x_axis["labelAngle"] == 0


def test_the_full_token_is_on_hover():
    spec = heatmap_spec(LONG)
    tooltip = {t["field"] for t in spec["layer"][0]["encoding"]["tooltip"]}
    assert {"token", "looks_at_token", "cell"} <= tooltip


def test_heat_maps_use_a_colour_blind_safe_ramp_and_write_the_value():
    spec = heatmap_spec(["the", "cat", "sat"])
    colour = spec["layer"][0]["encoding"]["color"]
    assert colour["condition"] == {"test": "datum.hidden", "value": "#D1D5DB"}  # masked: grey
    assert colour["scale"]["scheme"] == HEAT_SCHEME and HEAT_SCHEME in SAFE_SCHEMES
    assert any(layer["mark"]["type"] == "text" for layer in spec["layer"])  # the value, written


def test_short_axis_labels():
    assert short_label("Picture-perfect") == "Picture…" and len(short_label("x" * 40)) == 8
    assert short_label("the") == "the"


def points(n, spread=1.0):
    return pd.DataFrame({"id": range(n), "token": [f"token{i}" for i in range(n)],
                         "x": [spread * (i % 10) / 10 for i in range(n)],
                         "y": [spread * (i // 10) / 10 for i in range(n)],
                         "kind": "word"})


def boxes_overlap(pts, ids):
    from minillm.charts.attention import LABEL_PX, MAP_WIDTH

    xs, ys = pts["x"], pts["y"]
    px = 60 + (xs - xs.min()) / (xs.max() - xs.min()) * (MAP_WIDTH - 120)
    py = 460 - (24 + (ys - ys.min()) / (ys.max() - ys.min()) * (460 - 48))
    boxes = [(px[i] + 10, py[i] - 10, px[i] + 10 + LABEL_PX * len(pts["token"][i]), py[i] + 10)
             for i in ids]
    return any(not (a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1])
               for k, a in enumerate(boxes) for b in boxes[k + 1:])


def test_the_map_names_only_labels_that_do_not_cover_each_other():
    pts = points(150)
    kept = readable_labels(pts, list(range(150)))
    assert 0 < len(kept) <= 40 and not boxes_overlap(pts, kept)
    # ten dots a row, 48 px apart: a 7-letter name covers the next dot, so only the last
    # column's names are written (150 names written over one another before)
    assert all(i % 10 == 9 for i in kept)
    sparse = points(3).assign(x=[0.0, 0.5, 1.0], y=[0.0, 0.5, 1.0])
    assert readable_labels(sparse, [2, 0, 1]) == [2, 0, 1]  # the most frequent first
    spec = embedding_scatter(pts.assign(labelled=pts["id"].isin(kept))).to_dict()
    names = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "text")
    assert names["transform"] == [{"filter": "datum.labelled"}]


def test_the_map_says_what_its_axes_keep():
    sentence = variance_sentence((0.06, 0.06), 150)
    assert "6%" in sentence and "together 12%" in sentence and "88%" in sentence
