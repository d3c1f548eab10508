"""Chart builders for the Words vs tokens lab: DataFrames in, an altair chart out.

Pure functions (no streamlit), so a notebook draws exactly the figure the app shows:

    >>> from minillm import words
    >>> from minillm.tokenizers import load_encoding
    >>> table = words.tokens_per_word(words.top_words(100_000), load_encoding("cl100k_base"))
    >>> chart = tokens_per_word_chart(words.sample_by_log_rank(table), words.mean_tokens_by_log_rank(table))

The chart never receives all N words: a few thousand sampled words (evenly spread over the
log-scale axis) carry the tooltips, and a line of bin averages carries the trend, so the page
stays fast for N = 319,938 and altair's 5,000-row limit is never reached.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

#: Big enough to read from the back of a classroom.
LABEL_SIZE = 16
TITLE_SIZE = 18

WORD_DOTS = "one dot = one word"
AVERAGE_LINE = "average tokens per word"


def tokens_per_word_chart(points: pd.DataFrame, bins: pd.DataFrame, *, height: int = 440) -> alt.LayerChart:
    """Tokens per word against frequency rank (log scale): common words sit at 1 token, rare
    words climb to 2, 3 and more.

    `points`: rows of `minillm.words.tokens_per_word` (columns rank, word, tokens, pieces,
    zipf), usually `sample_by_log_rank(...)`. Each is a dot, nudged up or down a little at
    random so that dots on the same whole number do not hide each other; the tooltip gives the
    exact count and the pieces.
    `bins`: `minillm.words.mean_tokens_by_log_rank(...)`, drawn as a thick line.
    """
    colors = alt.Scale(domain=[WORD_DOTS, AVERAGE_LINE], range=["#4c78a8", "#e45756"])
    x_axis = alt.X(
        "rank:Q",
        scale=alt.Scale(type="log"),
        axis=alt.Axis(format="~s", tickCount=8),
        title="Frequency rank (1 = the most common word, log scale)",
    )
    color = alt.Color("series:N", scale=colors, title=None, legend=alt.Legend(orient="top-left"))
    dots = (
        alt.Chart(points.assign(series=WORD_DOTS)[["rank", "word", "tokens", "pieces", "zipf", "series"]])
        .transform_calculate(jittered="datum.tokens + (random() - 0.5) * 0.35")
        .mark_circle(size=70, opacity=0.45)
        .encode(
            x=x_axis,
            y=alt.Y(
                "jittered:Q",
                title="Tokens for the word",
                axis=alt.Axis(tickMinStep=1, format="d"),
                scale=alt.Scale(domainMin=0.5, nice=False),
            ),
            color=color,
            tooltip=[
                alt.Tooltip("word:N", title="word"),
                alt.Tooltip("rank:Q", title="rank", format=","),
                alt.Tooltip("tokens:Q", title="tokens"),
                alt.Tooltip("pieces:N", title="pieces (␣ is a space)"),
                alt.Tooltip("zipf:Q", title="Zipf frequency"),
            ],
        )
    )
    line = (
        alt.Chart(bins.assign(series=AVERAGE_LINE)[["rank", "mean_tokens", "words", "first_rank", "last_rank", "series"]])
        .mark_line(strokeWidth=5, point=alt.OverlayMarkDef(size=60, filled=True))
        .encode(
            x=x_axis,
            y=alt.Y("mean_tokens:Q"),
            color=color,
            tooltip=[
                alt.Tooltip("first_rank:Q", title="from rank", format=","),
                alt.Tooltip("last_rank:Q", title="to rank", format=","),
                alt.Tooltip("words:Q", title="words", format=","),
                alt.Tooltip("mean_tokens:Q", title="average tokens", format=".2f"),
            ],
        )
    )
    return (
        alt.layer(dots, line)
        .properties(height=height)
        .configure_axis(labelFontSize=LABEL_SIZE, titleFontSize=TITLE_SIZE)
        .configure_legend(labelFontSize=LABEL_SIZE, symbolSize=200, labelLimit=400)
    )
