"""Chart builders for the Compare tokenizers lab: a DataFrame in, an altair chart out.

Pure functions (no streamlit), so a notebook draws exactly the figure the app shows:

    >>> from minillm.compare import sharing_distribution, word_piece_index
    >>> from minillm.tokenizers import load_encoding
    >>> index = word_piece_index(load_encoding("cl100k_base"), 1000)
    >>> chart = sharing_chart(sharing_distribution(index))
"""

from __future__ import annotations

import altair as alt
import pandas as pd

#: Big enough to read from the back of a classroom.
LABEL_SIZE = 16
TITLE_SIZE = 18
#: BPE pieces in blue, the word vocabulary in orange (dark enough for labels on white).
COLOURS = ["#1D5FAE", "#C2570C"]


def sharing_chart(distribution: pd.DataFrame, *, height: int = 380) -> alt.LayerChart:
    """Grouped bars, each labelled with its count: how many pieces are in 1 word, 2, 3–4, ...

    `distribution` is `minillm.compare.sharing_distribution(...)`: one bar per (vocabulary,
    words-per-piece bin). The y axis is logarithmic, so a bin with 3 pieces is still visible
    next to one with 17,000 (bars are not stacked: a log scale has no zero to stack from). A
    word vocabulary is a single bar at "1": each of its pieces is a whole word, in one word.
    """
    order = distribution.sort_values("bin")["words per piece"].drop_duplicates().tolist()
    top = max(int(distribution["pieces"].max()), 1) * 4  # room above the tallest label
    base = alt.Chart(distribution).encode(
        x=alt.X("words per piece:N", sort=order, title="Words a piece is found in",
                axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("vocabulary:N"),
        y=alt.Y("pieces:Q", stack=None, title="Number of pieces (log scale)",
                scale=alt.Scale(type="log", domainMin=0.5, domainMax=top)),
        color=alt.Color("vocabulary:N", title=None, scale=alt.Scale(range=COLOURS),
                        legend=alt.Legend(orient="top", columns=1,  # one per line: fits a phone
                                          labelFontSize=LABEL_SIZE, labelLimit=500)),
        tooltip=[
            alt.Tooltip("vocabulary:N", title="Vocabulary"),
            alt.Tooltip("words per piece:N", title="Words per piece"),
            alt.Tooltip("pieces:Q", title="Pieces", format=","),
        ],
    )
    labels = base.mark_text(dy=-10, fontSize=LABEL_SIZE - 2).encode(
        text=alt.Text("pieces:Q", format=",")
    )
    return (
        alt.layer(base.mark_bar(), labels)
        .properties(height=height)
        .configure_axis(labelFontSize=LABEL_SIZE, titleFontSize=TITLE_SIZE)
    )
