"""Chart builders for the Generate lab: a DataFrame in, an altair chart (or HTML) out.

    >>> from minillm.experiment import Experiment, TrainSettings
    >>> from minillm.inspect import candidates_table, marked_generation
    >>> from minillm.sample import generate
    >>> exp = Experiment(TrainSettings(epochs=1))
    >>> generation = generate(exp.model, exp.dataset, "the cat", max_new_tokens=3, seed=1)
    >>> candidate_bars(candidates_table(generation, exp.dataset)).to_dict()["columns"]
    3
    >>> "mll-out" in marked_text_html(marked_generation(generation, exp.dataset))
    True
"""

from __future__ import annotations

import html

import altair as alt
import pandas as pd

LABEL_SIZE = 16
PICKED_COLOUR = "#EA580C"  # the token the model wrote
OTHER_COLOUR = "#93C5FD"  # the candidates it did not pick


def candidate_bars(candidates: pd.DataFrame, *, columns: int = 3, panel_width: int = 160,
                   bar_height: int = 30) -> alt.FacetChart:
    """One small bar chart per generation step: the top candidates and their probabilities.

    `candidates` is `minillm.inspect.candidates_table(generation, dataset)`. The orange bar
    is the token the model wrote (by id: two tokens may read the same); the panel title names
    it. Each bar is one row of the table: the axis shows its `candidate`, unique within a
    step. Probabilities are those it drew from (after temperature and top-k), so the bars of
    a step sum to at most 1. The layout depends on the rows only through the most candidates
    a step has (the panel height), so `minillm.charts.specs.with_data` can redraw it for
    another generation.
    """
    per_step = int(candidates.groupby("step").size().max()) if len(candidates) else 1
    base = alt.Chart().encode(
        # op="min": the bar and text layers share this axis, and Vega-Lite can merge their
        # sorts only for min, max or count (its default, sum, makes it drop the order)
        y=alt.Y("candidate:N", sort=alt.EncodingSortField("rank", op="min", order="ascending"),
                title=None,
                axis=alt.Axis(labelFontSize=LABEL_SIZE, labelLimit=140, ticks=False, domain=False)),
        x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1.15]), title=None, stack=None,
                axis=alt.Axis(format="%", values=[0, 0.5, 1], labelFontSize=13, grid=True)),
        tooltip=[alt.Tooltip("label:N", title="Candidate"), alt.Tooltip("token_id:Q", title="Id", format="d"),
                 alt.Tooltip("probability:Q", title="Probability", format=".1%")],
    )
    bars = base.mark_bar().encode(
        color=alt.when(alt.datum.picked).then(alt.value(PICKED_COLOUR)).otherwise(alt.value(OTHER_COLOUR))
    )
    values = base.mark_text(align="left", dx=4, fontSize=14).encode(
        text=alt.Text("probability:Q", format=".0%")
    )
    return (
        alt.layer(bars, values, data=candidates)
        .properties(width=panel_width, height=bar_height * per_step)
        .facet(
            facet=alt.Facet("panel:N", sort=alt.EncodingSortField("step", op="min"),
                            header=alt.Header(title=None, labelFontSize=LABEL_SIZE, labelFontWeight="bold",
                                              labelAnchor="start", labelLimit=260)),
            columns=columns,
        )
        .resolve_scale(y="independent")
        .configure_view(strokeWidth=0)
    )


COPIED_BACKGROUND = "#FDE68A"  # amber: readable with near-black text, visible on a projector
COPIED_BORDER = "#B45309"

_TEXT_CSS = f"""<style>
.mll-out {{ font-size: 1.7rem; line-height: 2.1; font-family: Georgia, 'DejaVu Serif', serif;
  white-space: pre-wrap; overflow-wrap: anywhere; color: #111827; }}
.mll-copied {{ background: {COPIED_BACKGROUND}; border-bottom: 4px solid {COPIED_BORDER};
  border-radius: 4px; padding: 2px 6px; margin: 0 2px; box-decoration-break: clone;
  -webkit-box-decoration-break: clone; }}
.mll-legend {{ font-size: 1.05rem; color: #374151; margin-top: 4px; }}
.mll-legend .mll-copied {{ font-size: 1.05rem; }}
</style>"""


def marked_text_html(segments, *, legend: bool = True, unit: str = "word", min_len: int = 3) -> str:
    """The generated text as HTML, copied runs highlighted, every piece of text escaped.

    `segments` is `minillm.inspect.marked_generation(...)`: (text, copied) pairs. Text goes
    through `html.escape`, so `<img src=x onerror=alert(1)>` in a prompt shows as those
    characters and never becomes an element.
    """
    parts = [
        f'<span class="mll-copied">{html.escape(text)}</span>' if copied else html.escape(text)
        for text, copied in segments
    ]
    out = f'{_TEXT_CSS}<div class="mll-out">{"".join(parts)}</div>'
    if legend:
        out += (f'<div class="mll-legend"><span class="mll-copied">highlighted</span> = copied '
                f'{unit} for {unit} from one sentence of the corpus ({min_len} {unit}s or more in '
                f'a row). Plain = a combination the corpus does not have.</div>')
    return out
