"""The loss curve of a training run, with the two numbers that frame it.

Pure functions (no streamlit), so a notebook draws exactly the figure the Train page shows:

    >>> from minillm.experiment import Experiment, TrainSettings
    >>> exp = Experiment(TrainSettings())
    >>> losses = exp.trainer.run()
    >>> runs = runs_frame(exp.trainer.history, exp.settings.label())
    >>> chart = loss_chart(runs, floor=exp.floor, start_loss=exp.start_loss, epochs=exp.settings.epochs)

Two horizontal rules give the loss a scale:

- ln|V|, the loss of a model that knows nothing and spreads its bet evenly over all |V| ids:
  where training starts;
- the loss floor, the best any model can do on this data (the next token is ambiguous after
  some contexts): where training can at most arrive.

When some lines are held out (never trained on), the run's loss on them is drawn too, in its
own colour: a model that learns the language brings both curves down; one that memorises
its lines brings the training curve down while the held-out one turns up. The floor is then
"the floor for memorising this data": a model can reach it only on lines it trained on. For
generated stories a third rule is the held-out floor, the grammar's entropy: the best any
model can do on new text.

Earlier runs are drawn as thin, faint lines, so the current one stands out.
"""

from __future__ import annotations

from typing import Sequence

import altair as alt
import pandas as pd

#: Big enough to read from the back of a classroom.
LABEL_SIZE = 16
TITLE_SIZE = 18

LEGEND_ROW = 26  # px per legend line, added to the height so more runs never squash the plot
MAX_POINTS = 400  # per run: a 2,000-epoch curve is thinned to this many points
CURRENT_COLOR = "#1f4e9c"
HELDOUT_COLOR = "#d4006a"  # the held-out curve and its floor: apart from every past run's colour
PAST_COLORS = ["#e45756", "#54a24b", "#b279a2", "#f58518", "#72b7b2"]
START_COLOR = "#888888"
FLOOR_COLOR = "#2a9d3a"
CURRENT_PREFIX = "this run: "
HELDOUT_RUN = "this run on its held-out lines (never trained on)"
FULL_BATCH_AXIS = "Epoch (one pass over all the windows)"


def thin(history: Sequence[float], max_points: int = MAX_POINTS) -> list[tuple[int, float]]:
    """(epoch, loss) pairs, every k-th epoch so that at most about `max_points` remain.

    Epochs count from 1 (the loss before the first step is epoch 1, as the notebook prints);
    the last epoch is always kept, so the curve ends where training ended.

    >>> thin([3.0, 2.0, 1.5, 1.2, 1.1], max_points=2)
    [(1, 3.0), (4, 1.2), (5, 1.1)]
    """
    n = len(history)
    step = max(1, -(-n // max_points))  # ceil(n / max_points)
    pairs = [(i + 1, float(history[i])) for i in range(0, n, step)]
    if n and pairs[-1][0] != n:
        pairs.append((n, float(history[-1])))
    return pairs


def thin_pairs(pairs: Sequence[tuple[int, float]], max_points: int = MAX_POINTS) -> list[tuple[int, float]]:
    """(epoch, loss) pairs thinned like `thin`, the last one always kept."""
    step = max(1, -(-len(pairs) // max_points))
    kept = [(int(e), float(v)) for e, v in list(pairs)[::step]]
    if pairs and kept[-1][0] != pairs[-1][0]:
        kept.append((int(pairs[-1][0]), float(pairs[-1][1])))
    return kept


def runs_frame(history: Sequence[float], label: str, past: Sequence[dict] = (),
               valid_history: Sequence[tuple[int, float]] = ()) -> pd.DataFrame:
    """One row per plotted point: run, epoch, loss, current (True for the run being trained).

    `past`: earlier runs as dicts with "label" and "history", oldest first; they are named by
    how long ago they ran ("1 run ago: lr=0.01"), so two runs with the same settings stay apart.
    `valid_history`: the current run's (epoch, held-out loss) pairs (`Trainer.valid_history`,
    epoch = steps done), drawn as `HELDOUT_RUN`.
    """
    rows = [(f"{CURRENT_PREFIX}{label}", epoch, loss, True) for epoch, loss in thin(history)]
    rows += [(HELDOUT_RUN, epoch, loss, True) for epoch, loss in thin_pairs(valid_history)]
    for ago, run in enumerate(reversed(list(past)), start=1):
        name = f"{ago} run{'s' if ago > 1 else ''} ago: {run['label']}"
        rows += [(name, epoch, loss, False) for epoch, loss in thin(run["history"])]
    return pd.DataFrame(rows, columns=["run", "epoch", "loss", "current"])


def loss_axis_top(floor: float, start_loss: float, heldout_floor: float | None = None) -> float:
    """Top of the loss axis: a little above ln|V| (a diverging run is cut off there)."""
    return 1.3 * max(start_loss, floor, heldout_floor or 0.0, 0.1)


def reference_rules(floor: float, start_loss: float, held_out: bool = False,
                    heldout_floor: float | None = None) -> pd.DataFrame:
    """The chart's horizontal rules: loss, what it means in words (the tooltip), its label on
    the chart, colour.

    >>> reference_rules(0.5, 2.0, held_out=True, heldout_floor=1.1)["what"].tolist()
    ['ln|V| = 2.000: a model that knows nothing', 'floor = 0.5000: the floor for memorising this data', 'held-out floor = 1.1000: the language itself, the best on new text']
    """
    rules = [
        {"loss": start_loss, "what": f"ln|V| = {start_loss:.3f}: a model that knows nothing",
         "color": START_COLOR},
        {"loss": floor, "what": (f"floor = {floor:.4f}: the floor for memorising this data"
                                 if held_out else
                                 f"floor = {floor:.4f}: the best any model can do on this data"),
         "color": FLOOR_COLOR},
    ]
    for rule in rules:
        rule["label"] = rule["what"]
    if heldout_floor is not None:  # a short label: it sits where the curves are on their way
        rules.append({"loss": heldout_floor, "color": HELDOUT_COLOR,
                      "what": f"held-out floor = {heldout_floor:.4f}: the language itself, "
                              "the best on new text",
                      "label": f"held-out floor = {heldout_floor:.4f} (the language's)"})
    return pd.DataFrame(rules)


def label_places(losses: Sequence[float], top: float) -> list[tuple[str, int]]:
    """Where each rule's label goes: ("right" or "left", vertical offset in px).

    ln|V| and the floor are labelled at the right end, just under their rule (the curves
    have left ln|V| behind there); a floor near the bottom gets its label above instead. A
    third rule (the held-out floor) is labelled at the left end, just above it: the curves
    start high, so the lower left is empty, while at the right they end near the floors.
    """
    places = []
    for i, loss in enumerate(losses):
        if i < 2:
            places.append(("right", 16 if i == 0 or loss > 0.12 * top else -12))
        else:
            places.append(("left", -12))
    return places


def loss_chart(
    runs: pd.DataFrame,
    *,
    floor: float,
    start_loss: float,
    epochs: int | None = None,
    height: int = 420,
    held_out: bool = False,
    heldout_floor: float | None = None,
    x_title: str = FULL_BATCH_AXIS,
) -> alt.LayerChart:
    """Loss against epoch for the current run (thick) and earlier runs (faint), with the
    reference rules, ln|V| and the loss floor, labelled in words.

    `runs`: `runs_frame(...)`, the layer's top-level data (a page may swap in newer rows of
    the same runs without rebuilding the chart). `epochs`: the length of the x axis (the run's
    planned epochs), so the curve grows across a fixed frame while it trains. `held_out`: the
    run holds some lines out (the floor is then the floor for memorising); `heldout_floor`:
    the best loss on held-out text (nats per token), drawn when known. `x_title`: what an
    epoch is (one step on a batch, with mini-batches).
    """
    top = loss_axis_top(floor, start_loss, heldout_floor)
    right = max([epochs or 1, int(runs["epoch"].max()) if len(runs) else 1])
    x = alt.X("epoch:Q", title=x_title, scale=alt.Scale(domain=[0, right], nice=False))
    y = alt.Y("loss:Q", title="Loss (how surprised the model is)",
              scale=alt.Scale(domain=[0, top], nice=False))
    names = list(dict.fromkeys(runs["run"]))
    current = [name for name in names if name.startswith(CURRENT_PREFIX)]
    heldout = [name for name in names if name == HELDOUT_RUN]
    past = [name for name in names if name not in current + heldout]
    color = alt.Color(
        "run:N", title=None,
        scale=alt.Scale(domain=current + heldout + past,
                        range=[CURRENT_COLOR] * len(current) + [HELDOUT_COLOR] * len(heldout)
                        + PAST_COLORS[: len(past)]),
        legend=alt.Legend(orient="bottom", direction="vertical", labelLimit=900),
    )
    tooltip = [alt.Tooltip("run:N"), alt.Tooltip("epoch:Q"), alt.Tooltip("loss:Q", format=".4f")]
    lines = (  # the curves take their data from the layer (below): one dataset, easy to swap
        alt.Chart()
        .mark_line(clip=True)
        .encode(
            x=x, y=y, color=color, detail="run:N", tooltip=tooltip,
            strokeWidth=alt.condition("datum.current", alt.value(4), alt.value(2)),
            opacity=alt.condition("datum.current", alt.value(1.0), alt.value(0.45)),
        )
    )
    hover = (  # invisible dots: hovering anywhere near the curve shows epoch and loss
        alt.Chart().mark_circle(size=120, opacity=0, clip=True)
        .encode(x=x, y=y, tooltip=tooltip)
    )
    rules = reference_rules(floor, start_loss, held_out, heldout_floor)
    rule = (
        alt.Chart(rules).mark_rule(strokeDash=[8, 6], strokeWidth=3)
        .encode(y=alt.Y("loss:Q"), color=alt.Color("color:N", scale=None),
                tooltip=[alt.Tooltip("what:N", title="reference")])
    )
    text = [  # where each label goes: see `label_places`
        alt.Chart(rules.iloc[[i]])
        .mark_text(align=side, fontSize=LABEL_SIZE, fontWeight="bold",
                   dx=-6 if side == "right" else 6, dy=dy)
        .encode(x=alt.datum(right if side == "right" else 0), y=alt.Y("loss:Q"), text="label:N",
                color=alt.Color("color:N", scale=None))
        for i, (side, dy) in enumerate(label_places(rules["loss"].tolist(), top))
    ]
    return (
        alt.layer(rule, lines, hover, *text, data=runs)
        .properties(height=height + LEGEND_ROW * len(names))  # the plot keeps its height
        .configure_axis(labelFontSize=LABEL_SIZE, titleFontSize=TITLE_SIZE)
        .configure_legend(labelFontSize=LABEL_SIZE, symbolStrokeWidth=4)
    )
