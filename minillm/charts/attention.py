"""Chart builders for the Attention lab: a DataFrame in, an altair chart out.

Pure functions (no streamlit), so a notebook draws exactly the figure the app shows:

    >>> from minillm.experiment import Experiment, TrainSettings
    >>> from minillm.inspect import attention_maps, attention_table, embedding_map
    >>> exp = Experiment(TrainSettings(epochs=1))
    >>> labels, weights = attention_maps(exp.model, exp.dataset, exp.dataset.X[4].tolist())
    >>> table = attention_table(labels, weights, causal=False)
    >>> heatmap = attention_heatmap(table[table["map"] == "head 1"], "head 1")
    >>> scatter = embedding_scatter(embedding_map(exp.model, exp.dataset))
    >>> heatmap.to_dict()["title"]["text"], len(scatter.to_dict()["layer"])
    ('head 1', 2)
"""

from __future__ import annotations

import json

import altair as alt
import pandas as pd

#: Big enough to read from the back of a classroom.
LABEL_SIZE = 16
TITLE_SIZE = 18
HIDDEN_COLOUR = "#D1D5DB"  # a masked cell: grey, with the word "hidden"
#: The heat maps' colours: ColorBrewer's yellow-green-blue, from near white through green to
#: dark blue. Its hues change and its lightness falls all the way, so it stays ordered with
#: red-green colour blindness (ColorBrewer rates it colour-blind safe), and near-zero cells
#: stay pale instead of the loud yellow that viridis and cividis give them. More attention
#: is darker. The value is written in each cell and is in the tooltip: never colour alone.
HEAT_SCHEME = "yellowgreenblue"
DARK_CELL = 0.5  # from this weight on a cell is dark enough for white text
AXIS_CHARS = 8  # a column label longer than this ends in "…" (the whole token is on hover)
PLOT_PX = 200  # the narrowest a map's cells get (three maps a row on a laptop): labels that
CHAR_PX = 9.5  # would not fit a column side by side at 16 px are turned
KIND_COLOURS = {"PAD": "#6B7280", "EOS": "#DC2626"}  # any other kind: blue
TOKEN_COLOUR = "#1D4ED8"
LAST_ROW_COLOUR = "#EA580C"


def _labels_expr(labels: list[str]) -> str:
    """A Vega expression that shows position n as its token (two "the" stay two columns)."""
    return f"{json.dumps(labels)}[datum.value]"


def short_label(token: str, limit: int = AXIS_CHARS) -> str:
    """A token cut to fit a heat map's column: `limit` characters at most, "…" when cut.

    >>> short_label("Picture-perfect"), short_label("cat")
    ('Picture…', 'cat')
    """
    return token if len(token) <= limit else token[: limit - 1] + "…"


def attention_heatmap(table: pd.DataFrame, title: str, subtitle: str = "", *, height: int = 300,
                      show_values: bool = True, mark_last_row: bool = True) -> alt.LayerChart:
    """One attention map: rows are the positions asking, columns the positions looked at.

    `table` holds one map's rows of `minillm.inspect.attention_table`. Darker is more
    attention (`HEAT_SCHEME`); each row sums to 1; each cell says its weight. Cells hidden by
    the causal mask are grey and say "hidden". Hover a cell for its exact weight and both
    tokens in full. Every column is labelled: a long token is cut with "…", and the labels
    turn when there are many columns or long tokens (never left out for lack of room). The
    last row, whose output becomes the guess for the next token, is outlined in orange. The
    layout depends on the rows only through the tokens (axis labels), so
    `minillm.charts.specs.with_data` can redraw it with other weights for the same tokens.
    """
    T = int(table["position"].max()) + 1
    labels = [table.loc[table["position"] == i, "token"].iloc[0] for i in range(T)]
    shown = [short_label(label) for label in labels]
    turned = max(map(len, shown)) * CHAR_PX > PLOT_PX / T  # too wide for a column side by side
    axis = dict(labelExpr=_labels_expr(shown), labelFontSize=LABEL_SIZE, titleFontSize=LABEL_SIZE,
                ticks=False, domain=False, labelLimit=130, labelOverlap=False)
    base = alt.Chart(table).encode(
        x=alt.X("looks_at:O", title="looks at →",
                axis=alt.Axis(orient="top", labelAngle=-45 if turned else 0,
                              labelAlign="left" if turned else "center", **axis)),
        y=alt.Y("position:O", title="position asking", axis=alt.Axis(labelAngle=0, **axis)),
        tooltip=[
            alt.Tooltip("token:N", title="Position asking"),
            alt.Tooltip("looks_at_token:N", title="looks at"),
            alt.Tooltip("cell:N", title="weight"),
        ],
    )
    colour = (
        alt.when(alt.datum.hidden)
        .then(alt.value(HIDDEN_COLOUR))
        .otherwise(alt.Color("weight:Q", scale=alt.Scale(domain=[0, 1], scheme=HEAT_SCHEME),
                             legend=None))
    )
    layers = [base.mark_rect(stroke="white", strokeWidth=2).encode(color=colour)]
    if mark_last_row:  # the row whose output becomes the guess for the next token
        layers.append(base.transform_filter(alt.datum.position == T - 1)
                      .mark_rect(fill=None, stroke=LAST_ROW_COLOUR, strokeWidth=3))
    if show_values:
        text_colour = (
            alt.when(alt.datum.hidden).then(alt.value("#4B5563"))
            .when(alt.datum.weight >= DARK_CELL).then(alt.value("white"))
            .otherwise(alt.value("#111827"))
        )
        size = 15 if T <= 6 else 12 if T <= 10 else 9
        layers.append(base.mark_text(fontSize=size).encode(text="cell:N", color=text_colour))
    return (
        alt.layer(*layers)
        .properties(title=alt.TitleParams(title, subtitle=subtitle or alt.Undefined, fontSize=TITLE_SIZE,
                                          subtitleFontSize=14, anchor="start"),
                    height=height, width="container")
        .configure_view(strokeWidth=0)
    )


LABEL_PX = 9.5  # width of one character of a map label (16 px bold), to keep labels apart
MAP_WIDTH = 340  # px the map's labels are laid out for: a phone's; readable there, readable on
# a laptop too (where the map is twice as wide, the names only further apart)


def readable_labels(points: pd.DataFrame, priority, *, width: int = MAP_WIDTH,
                    height: int = 460, most: int = 40) -> list[int]:
    """The ids to label on the embedding map: in `priority` order (most frequent first), each
    token whose label would cover neither a label already kept nor another token's dot, at
    most `most` of them.

    A label starts 10 px right of its dot and is `LABEL_PX` a character wide and 20 px
    tall; positions are laid out as `embedding_scatter` draws them on a `width` x `height`
    plot (its scale paddings included).

    >>> import pandas as pd
    >>> pts = pd.DataFrame({"id": [0, 1, 2], "token": ["cat", "dog", "mat"],
    ...                     "x": [0.0, 0.001, 1.0], "y": [0.0, 0.0, 1.0]})
    >>> readable_labels(pts, [1, 0, 2])   # "cat" would sit on "dog"
    [1, 2]
    """
    if not len(points):
        return []
    xs, ys = points["x"].to_numpy(float), points["y"].to_numpy(float)

    def scale(values, size, pad):
        low, high = values.min(), values.max()
        span = (high - low) or 1.0
        return pad + (values - low) / span * (size - 2 * pad)

    px, py = scale(xs, width, 60), height - scale(ys, height, 24)
    where = {int(i): k for k, i in enumerate(points["id"])}
    dots = [(x - 7, y - 7, x + 7, y + 7) for x, y in zip(px, py)]  # a dot is 14 px across

    def clear(box, others):
        return all(box[2] <= b[0] or b[2] <= box[0] or box[3] <= b[1] or b[3] <= box[1]
                   for b in others)

    kept, boxes = [], []
    for i in dict.fromkeys(int(i) for i in priority):
        if i not in where or len(kept) >= most:
            continue
        k = where[i]
        box = (px[k] + 10, py[k] - 10, px[k] + 10 + LABEL_PX * len(points["token"].iloc[k]),
               py[k] + 10)
        if clear(box, boxes) and clear(box, dots[:k] + dots[k + 1:]):  # no label, no other dot
            kept.append(i)
            boxes.append(box)
    return kept


def variance_sentence(explained, n_tokens: int) -> str:
    """What the map's two axes keep of the embeddings, in plain words.

    >>> variance_sentence((0.06, 0.06), 150)
    'Axis 1 shows 6% of how these 150 embeddings differ from one another, axis 2 another 6%: together 12%. The other 88% lies in directions a flat map cannot show, so two tokens drawn close together may still be far apart for the model.'
    """
    first, second = explained
    both = first + second
    return (f"Axis 1 shows {first:.0%} of how these {n_tokens} embeddings differ from one "
            f"another, axis 2 another {second:.0%}: together {both:.0%}. The other "
            f"{1 - both:.0%} lies in directions a flat map cannot show, so two tokens drawn "
            "close together may still be far apart for the model.")


def embedding_scatter(points: pd.DataFrame, *, height: int = 460) -> alt.LayerChart:
    """Each token as a dot on the two PCA axes of `minillm.inspect.embedding_map`, the ones
    whose `labelled` column is true (all, without that column) named beside their dot.

    Tokens close together have similar embedding rows: the model treats them alike. Every dot
    names its token on hover. The layout depends on the rows only through the kinds present
    (word, PAD, EOS), so `minillm.charts.specs.with_data` can redraw it for new points (and
    other labels) with the same kinds.
    """
    kinds = sorted(points["kind"].unique(), key=lambda k: (k in KIND_COLOURS, k))
    colours = [KIND_COLOURS.get(k, TOKEN_COLOUR) for k in kinds]
    base = alt.Chart(points).encode(
        x=alt.X("x:Q", title="PCA axis 1", scale=alt.Scale(zero=False, nice=False, padding=60),
                axis=alt.Axis(labels=False, ticks=False)),
        y=alt.Y("y:Q", title="PCA axis 2", scale=alt.Scale(zero=False, nice=False, padding=24),
                axis=alt.Axis(labels=False, ticks=False)),
        color=alt.Color("kind:N", title=None, scale=alt.Scale(domain=kinds, range=colours),
                        legend=alt.Legend(orient="top", labelFontSize=LABEL_SIZE, symbolSize=200)),
        tooltip=[alt.Tooltip("token:N", title="Token"), alt.Tooltip("id:Q", title="id"),
                 alt.Tooltip("kind:N", title="kind")],
    )
    dots = base.mark_circle(size=160, opacity=0.9)
    names = base.mark_text(align="left", dx=10, dy=-2, fontSize=LABEL_SIZE, fontWeight="bold")
    if "labelled" in points.columns:
        names = names.transform_filter(alt.datum.labelled)
    return (
        alt.layer(dots, names.encode(text="token:N"))
        .properties(height=height, width="container")
        .configure_axis(labelFontSize=LABEL_SIZE, titleFontSize=LABEL_SIZE, grid=True, gridOpacity=0.4)
    )
