"""Chart builders for the Build a BPE lab: a DataFrame in, an altair chart out.

Pure functions (no streamlit), so a notebook draws exactly the figure the app shows:

    >>> from minillm.bpe import train_bpe, vocabulary_curve
    >>> from minillm.corpus import COUNTRY_STYLE
    >>> result = train_bpe(" ".join(COUNTRY_STYLE), 50)
    >>> chart = vocabulary_chart(vocabulary_curve(result), current_merges=20)
"""

from __future__ import annotations

import altair as alt
import pandas as pd

#: Big enough to read from the back of a classroom.
LABEL_SIZE = 16
TITLE_SIZE = 18
LINE_COLOUR = "#1f77b4"
MARK_COLOUR = "#d62728"


def vocabulary_chart(
    curve: pd.DataFrame, *, current_merges: int | None = None, height: int = 340
) -> alt.LayerChart:
    """Tokens per word (y) against vocabulary size (x) as merges are added.

    `curve` is `minillm.bpe.vocabulary_curve(result)`: columns ``merges``, ``vocabulary size``,
    ``tokens`` and ``tokens per word``. At 256 (bytes only) a word costs as many tokens as it
    has bytes; each merge glues a frequent pair, so the line falls fast at first and then
    flattens: later merges glue rarer pairs and save fewer tokens. `current_merges` draws a
    red dot at that step (the one a slider shows).
    """
    tooltip = [
        alt.Tooltip("merges:Q", title="Merges", format=","),
        alt.Tooltip("vocabulary size:Q", title="Vocabulary size", format=","),
        alt.Tooltip("tokens:Q", title="Tokens in the corpus", format=","),
        alt.Tooltip("tokens per word:Q", title="Tokens per word", format=".2f"),
    ]
    x = alt.X("vocabulary size:Q", title="Vocabulary size (256 bytes + merges)",
              scale=alt.Scale(zero=False))
    y = alt.Y("tokens per word:Q", title="Tokens per word", scale=alt.Scale(zero=True))
    line = (
        alt.Chart(curve)
        .mark_line(color=LINE_COLOUR, strokeWidth=3, point=alt.OverlayMarkDef(size=30))
        .encode(x=x, y=y, tooltip=tooltip)
    )
    layers = [line]
    if current_merges is not None and len(curve):
        current = curve.iloc[(curve["merges"] - current_merges).abs().argsort()[:1]]
        layers.append(
            alt.Chart(current)
            .mark_point(color=MARK_COLOUR, size=220, filled=True)
            .encode(x=x, y=y, tooltip=tooltip)
        )
    return (
        alt.layer(*layers)
        .properties(height=height)
        .configure_axis(labelFontSize=LABEL_SIZE, titleFontSize=TITLE_SIZE)
    )
