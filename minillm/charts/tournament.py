"""The tokenizer tournament's figure: held-out bits per character against vocabulary size.

Pure functions (no streamlit), so a notebook draws exactly the figure the Which tokens? page
shows:

    >>> from minillm.tournament import EntrantResult, TournamentResult, TournamentSettings
    >>> result = TournamentResult(TournamentSettings(), [
    ...     EntrantResult("words", 180, 11700, 25000, 0.23, 138.0, 1.8, 0.73, 0.035, 0.33,
    ...                   kind="words"),
    ...     EntrantResult("BPE-200", 458, 29770, 43498, 0.26, 122.0, 2.1, 0.66, kind="bpe")],
    ...     heldout_chars=20_000, heldout_floor_bits=0.386)
    >>> frame = results_frame(result)
    >>> list(frame["tokenizer"]), list(frame["family"])
    (['words', 'BPE-200'], ['whole words', 'BPE pieces'])
    >>> chart = bits_chart(frame, floor_bits=result.heldout_floor_bits)

Lower is better: each point is one entrant, placed by how many ids its vocabulary has (a log
scale: 29 characters and 1,258 BPE pieces on one axis) and how many bits per character it
paid on text it never saw. Hovering a point shows its parameters. The dashed line is the
held-out floor when it is known (generated stories): no model can go below it on average.
Only the entrants' names are written on the chart, never the corpus's text.
"""

from __future__ import annotations

import math

import altair as alt
import pandas as pd

#: Big enough to read from the back of a classroom.
LABEL_SIZE = 16
TITLE_SIZE = 18
POINT_LABEL_SIZE = 15
#: One colour per family of tokenizer (dark enough for labels on white).
FAMILIES = {
    "words": "whole words",
    "characters": "characters or bytes",
    "bytes": "characters or bytes",
    "bpe": "BPE pieces",
    "cl100k_base": "GPT-4's pieces",
}
FAMILY_COLOURS = {
    "whole words": "#C2570C",
    "characters or bytes": "#5B6770",
    "BPE pieces": "#1D5FAE",
    "GPT-4's pieces": "#2A7F3A",
}
FLOOR_COLOUR = "#2a9d3a"
COLUMNS = ["tokenizer", "family", "vocabulary", "embedding parameters", "parameters",
           "tokens per character", "context (characters)", "training seconds",
           "held-out bits per character", "unknown words", "paid for unknown words"]


#: Where a point's name goes: (align, dx, dy) beside it, above or below, right or left.
LABEL_PLACES = {"above right": ("left", 10, -12), "below right": ("left", 10, 14),
                "above left": ("right", -10, -12), "below left": ("right", -10, 14)}


def label_places(frame: pd.DataFrame, bottom: float, top: float, width: float = 640,
                 height: float = 330) -> list[str]:
    """A place for each point's name (see LABEL_PLACES) so that names sit on no other name
    and no other point, as far as they can: each point in turn, from the left, takes the
    place whose label box (guessed in pixels of a `width` x `height` plot) overlaps least.

    >>> frame = pd.DataFrame({"tokenizer": ["characters", "words", "BPE-200", "BPE-1000"],
    ...                       "vocabulary": [30, 400, 460, 1300],
    ...                       "held-out bits per character": [1.5, 0.73, 0.66, 0.81]})
    >>> label_places(frame, 0.3, 1.7)  # BPE-1000, at the right edge: its name on its left
    ['above right', 'above right', 'above right', 'above left']
    >>> label_places(frame.assign(**{"held-out bits per character": [1.5, 0.73, 0.70, 0.81]}),
    ...              0.3, 1.7)  # BPE-200 just under words: its name goes below
    ['above right', 'above right', 'below right', 'above left']
    """
    if frame.empty:
        return []
    logs = [math.log10(max(v, 1)) for v in frame["vocabulary"]]
    left, span = min(logs), max(max(logs) - min(logs), 1e-9)
    xs = [30 + (v - left) / span * (width - 60) for v in logs]  # the scale's padding: 30 px
    ys = [(top - b) / max(top - bottom, 1e-9) * height
          for b in frame["held-out bits per character"]]
    names = [str(n) for n in frame["tokenizer"]]
    boxes: list[tuple[float, float, float, float]] = []  # labels placed so far

    def box(i: int, place: str) -> tuple[float, float, float, float]:
        align, dx, dy = LABEL_PLACES[place]
        w, h = 9.0 * len(names[i]), 16.0
        x0 = xs[i] + dx if align == "left" else xs[i] + dx - w
        return x0, ys[i] + dy - h / 2, x0 + w, ys[i] + dy + h / 2

    def overlap(a, b) -> float:
        return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))

    places = [""] * len(frame)
    for i in sorted(range(len(frame)), key=lambda k: xs[k]):
        def cost(place: str) -> float:
            b = box(i, place)
            dots = sum(overlap(b, (xs[j] - 9, ys[j] - 9, xs[j] + 9, ys[j] + 9))
                       for j in range(len(frame)) if j != i)
            outside = max(0.0, b[2] - width) * 16 + max(0.0, -b[0]) * 16
            return dots + sum(overlap(b, other) for other in boxes) + outside
        best = min(LABEL_PLACES, key=cost)  # the first of equals: above right
        places[i] = best
        boxes.append(box(i, best))
    return places


def results_frame(result) -> pd.DataFrame:
    """One row per entrant of a `minillm.tournament.TournamentResult`, in its order.

    ``unknown words`` is the share of held-out words the word model did not know (None for
    the others: nothing is unknown to them); ``paid for unknown words`` is the part of its
    bits per character those cost.
    """
    rows = []
    for e in result.entrants:
        is_unit = e.kind in ("words", "characters")
        rows.append([
            e.name, FAMILIES.get(e.kind, "other"), e.vocab_size, e.embedding_parameters,
            e.parameters, e.tokens_per_char, e.context_chars, e.seconds, e.heldout_bits,
            e.unknown_share if is_unit else None, e.unknown_bits if is_unit else None,
        ])
    return pd.DataFrame(rows, columns=COLUMNS)


def bits_chart(frame: pd.DataFrame, *, floor_bits: float | None = None,
               floor_label: str = "held-out floor", height: int = 420) -> alt.LayerChart:
    """Held-out bits per character (y) against vocabulary size (x, log scale), one labelled
    point per entrant, and the held-out floor as a dashed line when `floor_bits` is known."""
    top = float(frame["held-out bits per character"].max()) * 1.12 if len(frame) else 1.0
    bottom = min([float(frame["held-out bits per character"].min()) if len(frame) else 0.0]
                 + ([floor_bits] if floor_bits is not None else [])) * 0.85
    families = [f for f in FAMILY_COLOURS if f in set(frame["family"])]
    frame = frame.assign(label_place=label_places(frame, bottom, top))
    y = alt.Y("held-out bits per character:Q", title="Held-out bits per character (lower is better)",
              scale=alt.Scale(domain=[max(0.0, bottom), top], zero=False))
    base = alt.Chart(frame).encode(
        x=alt.X("vocabulary:Q", title="Vocabulary size (ids, log scale)",
                scale=alt.Scale(type="log", nice=False, padding=30)),
        y=y,
        color=alt.Color("family:N", title=None,
                        scale=alt.Scale(domain=families,
                                        range=[FAMILY_COLOURS[f] for f in families]),
                        legend=alt.Legend(orient="top", labelFontSize=LABEL_SIZE, columns=2,
                                          labelLimit=400, symbolSize=200)),
        tooltip=[
            alt.Tooltip("tokenizer:N", title="Tokenizer"),
            alt.Tooltip("held-out bits per character:Q", title="Held-out bits per character",
                        format=".3f"),
            alt.Tooltip("vocabulary:Q", title="Vocabulary (ids)", format=","),
            alt.Tooltip("parameters:Q", title="Parameters", format=","),
            alt.Tooltip("embedding parameters:Q", title="Embedding parameters", format=","),
            alt.Tooltip("tokens per character:Q", title="Tokens per character", format=".3f"),
            alt.Tooltip("context (characters):Q", title="Context (characters)", format=".0f"),
        ],
    )
    points = base.mark_point(size=220, filled=True, opacity=0.9)
    layers = [points]
    for place, (align, dx, dy) in LABEL_PLACES.items():
        layers.append(base.transform_filter(alt.datum.label_place == place).mark_text(
            align=align, dx=dx, dy=dy, fontSize=POINT_LABEL_SIZE, fontWeight="bold",
        ).encode(text="tokenizer:N"))
    if floor_bits is not None:
        floor = pd.DataFrame({"held-out bits per character": [floor_bits],
                              "label": [f"{floor_label}: {floor_bits:.3f}"]})
        rule = alt.Chart(floor).mark_rule(color=FLOOR_COLOUR, strokeDash=[8, 5], size=2).encode(
            y=alt.Y("held-out bits per character:Q"))
        text = alt.Chart(floor).mark_text(align="left", baseline="top", dy=6, x=6,
                                          color=FLOOR_COLOUR, fontSize=POINT_LABEL_SIZE).encode(
            y=alt.Y("held-out bits per character:Q"), text="label:N")
        layers += [rule, text]
    return (
        alt.layer(*layers)
        .properties(height=height)
        .configure_axis(labelFontSize=LABEL_SIZE, titleFontSize=TITLE_SIZE)
        .configure_legend(labelFontSize=LABEL_SIZE)
    )
