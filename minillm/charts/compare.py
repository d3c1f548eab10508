"""Chart builders for the Compare tokenizers lab: a DataFrame in, an altair chart out.

Pure functions (no streamlit), so a notebook draws exactly the figure the app shows:

    >>> from minillm.compare import sharing_distribution, word_piece_index
    >>> from minillm.tokenizers import load_encoding
    >>> chart = sharing_chart(sharing_distribution(word_piece_index(load_encoding("cl100k_base"), 1000)))
"""

from __future__ import annotations

import altair as alt
import pandas as pd

#: Big enough to read from the back of a classroom.
LABEL_SIZE = 16
TITLE_SIZE = 18


def sharing_chart(distribution: pd.DataFrame, *, height: int = 360) -> alt.Chart:
    """Grouped bars: how many pieces are found in 1 word, 2 words, 3–4 words, ...

    `distribution` is `minillm.compare.sharing_distribution(...)`: one bar per (vocabulary,
    words-per-piece bin). The y axis is logarithmic, so a bin with 3 pieces is still visible
    next to one with 17,000. A word vocabulary is a single bar at "1": each of its pieces is
    a whole word, found in exactly one word.
    """
    order = (
        distribution.sort_values("bin")["words per piece"].drop_duplicates().tolist()
    )
    return (
        alt.Chart(distribution)
        .mark_bar()
        .encode(
            x=alt.X("words per piece:N", sort=order, title="Words a piece is found in",
                    axis=alt.Axis(labelAngle=0)),
            xOffset=alt.XOffset("vocabulary:N"),
            y=alt.Y("pieces:Q", scale=alt.Scale(type="log"),
                    title="Number of pieces (log scale)"),
            color=alt.Color("vocabulary:N", title=None,
                            scale=alt.Scale(range=["#1f77b4", "#ff7f0e"]),
                            legend=alt.Legend(orient="top", labelFontSize=LABEL_SIZE,
                                              labelLimit=400)),
            tooltip=[
                alt.Tooltip("vocabulary:N", title="Vocabulary"),
                alt.Tooltip("words per piece:N", title="Words per piece"),
                alt.Tooltip("pieces:Q", title="Pieces", format=","),
            ],
        )
        .properties(height=height)
        .configure_axis(labelFontSize=LABEL_SIZE, titleFontSize=TITLE_SIZE)
    )
