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
KIND_COLOURS = {"PAD": "#6B7280", "EOS": "#DC2626"}  # any other kind: blue
TOKEN_COLOUR = "#1D4ED8"
LAST_ROW_COLOUR = "#EA580C"


def _labels_expr(labels: list[str]) -> str:
    """A Vega expression that shows position n as its token (two "the" stay two columns)."""
    return f"{json.dumps(labels)}[datum.value]"


def attention_heatmap(table: pd.DataFrame, title: str, subtitle: str = "", *, height: int = 300,
                      show_values: bool = True, mark_last_row: bool = True) -> alt.LayerChart:
    """One attention map: rows are the positions asking, columns the positions looked at.

    `table` holds one map's rows of `minillm.inspect.attention_table`. Darker blue is more
    attention; each row sums to 1. Cells hidden by the causal mask are grey and say
    "hidden". Hover a cell for its exact weight. The last row, whose output becomes the
    guess for the next token, is outlined in orange. The layout depends on the rows only
    through the tokens (axis labels), so `minillm.charts.specs.with_data` can redraw it with
    other weights for the same tokens.
    """
    T = int(table["position"].max()) + 1
    labels = [table.loc[table["position"] == i, "token"].iloc[0] for i in range(T)]
    axis = dict(labelExpr=_labels_expr(labels), labelFontSize=LABEL_SIZE, titleFontSize=LABEL_SIZE,
                labelAngle=0, ticks=False, domain=False, labelLimit=120)
    base = alt.Chart(table).encode(
        x=alt.X("looks_at:O", title="looks at →", axis=alt.Axis(orient="top", **axis)),
        y=alt.Y("position:O", title="position asking", axis=alt.Axis(**axis)),
        tooltip=[
            alt.Tooltip("token:N", title="Position asking"),
            alt.Tooltip("looks_at_token:N", title="looks at"),
            alt.Tooltip("cell:N", title="weight"),
        ],
    )
    colour = (
        alt.when(alt.datum.hidden)
        .then(alt.value(HIDDEN_COLOUR))
        .otherwise(alt.Color("weight:Q", scale=alt.Scale(domain=[0, 1], scheme="blues"),
                             legend=None))
    )
    layers = [base.mark_rect(stroke="white", strokeWidth=2).encode(color=colour)]
    if mark_last_row:  # the row whose output becomes the guess for the next token
        layers.append(base.transform_filter(alt.datum.position == T - 1)
                      .mark_rect(fill=None, stroke=LAST_ROW_COLOUR, strokeWidth=3))
    if show_values:
        text_colour = (
            alt.when(alt.datum.hidden).then(alt.value("#4B5563"))
            .when(alt.datum.weight > 0.55).then(alt.value("white"))
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


def embedding_scatter(points: pd.DataFrame, *, height: int = 460) -> alt.LayerChart:
    """Each token as a labelled dot on the two PCA axes of `minillm.inspect.embedding_map`.

    Tokens close together have similar embedding rows: the model treats them alike. The
    layout depends on the rows only through the kinds present (word, PAD, EOS), so
    `minillm.charts.specs.with_data` can redraw it for new points with the same kinds.
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
    return (
        alt.layer(dots, names.encode(text="token:N"))
        .properties(height=height, width="container")
        .configure_axis(labelFontSize=LABEL_SIZE, titleFontSize=LABEL_SIZE, grid=True, gridOpacity=0.4)
    )
