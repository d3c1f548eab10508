"""The class board's chart: every posted run's loss against its parameter count.

Each point is one run; its colour is one setting (the one the lesson varies, or the run's
whole label). The x axis is logarithmic: models from a few hundred to a million parameters.
The loss is the held-out loss where the run has one, else its final training loss (the
column "loss shown" says which). Pure function: DataFrame in (`minillm.board_report.runs_frame`),
chart out.

    >>> import pandas as pd
    >>> frame = pd.DataFrame({"run": [1], "nickname": ["Ada"], "parameters": [14094],
    ...                       "final loss": [0.3845], "held-out loss": [None], "floor": [0.3839],
    ...                       "settings": ["notebook settings"]})
    >>> board_chart(frame, colour_by="settings").to_dict()["mark"]["type"]
    'point'
"""

from __future__ import annotations

import altair as alt
import pandas as pd

LABEL_SIZE = 16
TITLE_SIZE = 18


def chart_rows(frame: pd.DataFrame, colour_by: str) -> pd.DataFrame:
    """The chart's rows: run, nickname, parameters, loss, which loss, and the colour's value."""
    column = colour_by if colour_by in frame.columns else f"setting: {colour_by}"
    heldout = frame["held-out loss"]
    rows = pd.DataFrame({
        "run": frame["run"],
        "nickname": frame["nickname"].astype(str),
        "parameters": frame["parameters"],
        "loss": heldout.where(heldout.notna(), frame["final loss"]).astype(float),
        "loss shown": heldout.notna().map({True: "held-out", False: "training"}),
        "floor": frame["floor"],
        "colour": frame[column].astype(str) if column in frame.columns else "",
    })
    return rows


def board_chart(frame: pd.DataFrame, colour_by: str = "settings", height: int = 420) -> alt.Chart:
    """Loss against parameters, one point per run, coloured by `colour_by` (a setting name
    or "settings"); nickname, run number and numbers in the tooltip (shown as text)."""
    rows = chart_rows(frame, colour_by)
    title = "settings" if colour_by == "settings" else colour_by.replace("_", " ")
    return (
        alt.Chart(rows)
        .mark_point(filled=True, size=160, opacity=0.85)
        .encode(
            x=alt.X("parameters:Q", title="Parameters (log scale)",
                    scale=alt.Scale(type="log", nice=True)),
            y=alt.Y("loss:Q", title="Loss (held-out where known)", scale=alt.Scale(zero=False),
                    axis=alt.Axis(format=".3f")),  # else a lone run gets a six-decimal tick
            color=alt.Color("colour:N", title=title,
                            legend=alt.Legend(orient="bottom", direction="vertical",
                                              labelLimit=600)),
            shape=alt.Shape("loss shown:N", title="loss"),
            tooltip=[alt.Tooltip("run:Q", title="run"), alt.Tooltip("nickname:N"),
                     alt.Tooltip("parameters:Q", format=","),
                     alt.Tooltip("loss:Q", format=".4f"), alt.Tooltip("loss shown:N"),
                     alt.Tooltip("colour:N", title=title)],
        )
        .properties(height=height)
        .configure_axis(labelFontSize=LABEL_SIZE, titleFontSize=TITLE_SIZE)
        .configure_legend(labelFontSize=LABEL_SIZE, titleFontSize=LABEL_SIZE)
    )
