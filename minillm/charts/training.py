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

import json
import textwrap
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


def past_name(ago: int, label: str) -> str:
    """An earlier run's legend name: how long ago it ran, then its settings.

    >>> past_name(2, "characters · every position")
    '2 runs ago: characters · every position'
    """
    return f"{ago} run{'s' if ago > 1 else ''} ago: {label}"


def runs_frame(history: Sequence[float], label: str, past: Sequence[dict] = (),
               valid_history: Sequence[tuple[int, float]] = ()) -> pd.DataFrame:
    """One row per plotted point: run, epoch, loss, current (True for the run being trained).

    `past`: earlier runs as dicts with "label" and "history", oldest first; they are named by
    how long ago they ran (`past_name`), so two runs with the same settings stay apart.
    `valid_history`: the current run's (epoch, held-out loss) pairs (`Trainer.valid_history`,
    epoch = steps done), drawn as `HELDOUT_RUN`.
    """
    rows = [(f"{CURRENT_PREFIX}{label}", epoch, loss, True) for epoch, loss in thin(history)]
    rows += [(HELDOUT_RUN, epoch, loss, True) for epoch, loss in thin_pairs(valid_history)]
    for ago, run in enumerate(reversed(list(past)), start=1):
        name = past_name(ago, run["label"])
        rows += [(name, epoch, loss, False) for epoch, loss in thin(run["history"])]
    return pd.DataFrame(rows, columns=["run", "epoch", "loss", "current"])


LEGEND_CHARS = 30  # a legend line at most this long: about 260 px at 16 px, a phone's width


def legend_lines(name: str, width: int = LEGEND_CHARS) -> list[str]:
    """A run's legend name cut into lines of at most `width` characters, between settings
    (at " · " or after "ago:"), so a phone's narrow legend wraps instead of cutting it off.

    >>> legend_lines("this run: your sentences · characters · EOS · every position")
    ['this run: your sentences', 'characters · EOS', 'every position']
    >>> legend_lines(HELDOUT_RUN)
    ['this run on its held-out lines', '(never trained on)']
    """
    head, sep, rest = name.partition(": ")
    words = [head + sep.rstrip()] if sep else []
    parts = (rest if sep else name).split(" · ")
    lines: list[str] = []
    for i, part in enumerate(parts):
        glue = " " if i == 0 and words else " · "
        if lines and len(lines[-1]) + len(glue) + len(part) <= width:
            lines[-1] += glue + part
        elif not lines and words and len(words[0]) + 1 + len(part) <= width:
            lines.append(words[0] + " " + part)
        else:
            if not lines and words:
                lines.append(words[0])
            lines.append(part)
    # a single setting longer than a line (a long corpus name) wraps between its words
    return [short for line in lines for short in textwrap.wrap(line, width)] or [name]


def past_references(past: Sequence[dict]) -> tuple[tuple[str, float | None, float], ...]:
    """(legend name, floor, start) of each earlier run, named as in `runs_frame`.

    An earlier run on other data (another tokenizer, corpus or block size) has its own ln|V|
    and floor: the chart draws that run's floor in its colour and makes room for its start.
    The start is the run's ln|V| when it was kept, else its first loss.

    >>> past_references([{"label": "words", "history": [5.3, 4.0], "floor": 0.38}])
    (('1 run ago: words', 0.38, 5.3),)
    """
    out = []
    for ago, run in enumerate(reversed(list(past)), start=1):
        history = list(run["history"])
        start = run.get("start_loss", history[0] if history else None)
        out.append((past_name(ago, run["label"]), run.get("floor"),
                    max(start or 0.0, history[0] if history else 0.0)))
    return tuple(out)


def loss_axis_top(floor: float, start_loss: float, heldout_floor: float | None = None,
                  others: Sequence[float] = ()) -> float:
    """Top of the loss axis: a little above the highest ln|V| drawn (a diverging run is cut
    off there). `others`: earlier runs' starts and floors, so no earlier run is cut off."""
    return 1.3 * max(start_loss, floor, heldout_floor or 0.0, *others, 0.1)


def reference_rules(floor: float, start_loss: float, held_out: bool = False,
                    heldout_floor: float | None = None,
                    past: Sequence[tuple[str, float | None, float]] = ()) -> pd.DataFrame:
    """The chart's horizontal rules: loss, what it means in words (the tooltip), its short
    label on the chart, colour, and the run it belongs to.

    `past`: `past_references(...)`; an earlier run whose floor is not this run's (other data)
    gets its own rule, labelled with how long ago it ran. Its colour is set by `loss_chart`.

    >>> reference_rules(0.5, 2.0, held_out=True, heldout_floor=1.1)["what"].tolist()
    ['ln|V| = 2.000: a model that knows nothing', 'floor = 0.5000: the floor for memorising this data', 'held-out floor = 1.1000: the language itself, the best on new text']
    >>> reference_rules(0.5, 2.0, past=[("1 run ago: words", 0.38, 5.3)])["label"].tolist()
    ['ln|V| = 2.000: knows nothing', 'floor = 0.5000: the best possible', '1 run ago: floor = 0.3800']
    """
    rules = [
        {"loss": start_loss, "what": f"ln|V| = {start_loss:.3f}: a model that knows nothing",
         "label": f"ln|V| = {start_loss:.3f}: knows nothing", "color": START_COLOR,
         "run": "this run"},
        {"loss": floor, "what": (f"floor = {floor:.4f}: the floor for memorising this data"
                                 if held_out else
                                 f"floor = {floor:.4f}: the best any model can do on this data"),
         "label": (f"floor = {floor:.4f} (memorising)" if held_out else
                   f"floor = {floor:.4f}: the best possible"),
         "color": FLOOR_COLOR, "run": "this run"},
    ]
    if heldout_floor is not None:
        rules.append({"loss": heldout_floor, "color": HELDOUT_COLOR, "run": HELDOUT_RUN,
                      "what": f"held-out floor = {heldout_floor:.4f}: the language itself, "
                              "the best on new text",
                      "label": f"held-out floor = {heldout_floor:.4f} (the language's)"})
    for name, past_floor, _ in past:
        if past_floor is None or f"{past_floor:.4f}" == f"{floor:.4f}":
            continue  # the same data: this run's floor is that run's too
        ago = name.split(":")[0]
        rules.append({"loss": past_floor, "color": "", "run": name,
                      "what": f"floor = {past_floor:.4f} for {name} (its own data)",
                      "label": f"{ago}: floor = {past_floor:.4f}"})
    return pd.DataFrame(rules)


LABEL_GAP = 20  # px between two labels' centres, so they never overlap


def label_places(losses: Sequence[float], top: float, height: int = 420) -> list[tuple[str, float]]:
    """Where each rule's label goes: ("right" or "left", the loss its text is centred at).

    ln|V| (the first rule) is labelled at the right end, just under its rule: the curves
    have left ln|V| behind there. Every floor is labelled at the left end, just above its
    rule: the curves start high, near ln|V|, so the lower left is empty, while at the right
    they end on the floors, where a label would sit on the curve. Floors close together
    have their labels stacked upwards, `LABEL_GAP` px apart, lowest floor first.

    >>> label_places([3.0, 0.5, 0.55], top=4.0, height=400)
    [('right', 2.84), ('left', 0.62), ('left', 0.82)]
    """
    per_px = top / height
    places: list[tuple[str, float]] = [("right", 0.0)] * len(losses)
    if losses:
        places[0] = ("right", round(losses[0] - 16 * per_px, 4))
    above = None  # the label placed last (lower floors first)
    for i in sorted(range(1, len(losses)), key=lambda i: losses[i]):
        y = losses[i] + 12 * per_px
        if above is not None:
            y = max(y, above + LABEL_GAP * per_px)
        places[i] = ("left", round(y, 4))
        above = y
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
    past: Sequence[tuple[str, float | None, float]] = (),
) -> alt.LayerChart:
    """Loss against epoch for the current run (thick) and earlier runs (faint), with the
    reference rules, ln|V| and the loss floor, labelled in words.

    `runs`: `runs_frame(...)`, the layer's top-level data (a page may swap in newer rows of
    the same runs without rebuilding the chart). `epochs`: the length of the x axis (the run's
    planned epochs), so the curve grows across a fixed frame while it trains. `held_out`: the
    run holds some lines out (the floor is then the floor for memorising); `heldout_floor`:
    the best loss on held-out text (nats per token), drawn when known. `x_title`: what an
    epoch is (one step on a batch, with mini-batches). `past`: `past_references(...)` of the
    earlier runs in `runs`: the loss axis reaches above each one's start, and an earlier run
    on other data gets its own floor, in its colour.

    The curve's last point is marked with its epoch and loss, drawn from the same rows as the
    curve, so the number beside the curve is always the point it has reached.
    """
    others = [v for _, f, s in past for v in (f, s) if v is not None]
    top = loss_axis_top(floor, start_loss, heldout_floor, others)
    right = max([epochs or 1, int(runs["epoch"].max()) if len(runs) else 1])
    x = alt.X("epoch:Q", title=x_title, scale=alt.Scale(domain=[0, right], nice=False))
    y = alt.Y("loss:Q", title="Loss (how surprised the model is)",
              scale=alt.Scale(domain=[0, top], nice=False))
    names = list(dict.fromkeys(runs["run"]))
    current = [name for name in names if name.startswith(CURRENT_PREFIX)]
    heldout = [name for name in names if name == HELDOUT_RUN]
    earlier = [name for name in names if name not in current + heldout]
    colours = dict(zip(current + heldout + earlier,
                       [CURRENT_COLOR] * len(current) + [HELDOUT_COLOR] * len(heldout)
                       + PAST_COLORS[: len(earlier)]))
    wrapped = {name: legend_lines(name) for name in names}
    color = alt.Color(
        "run:N", title=None,
        scale=alt.Scale(domain=list(colours), range=list(colours.values())),
        # each name on lines short enough for a phone's chart (about 350 px wide); labelLimit
        # cuts anything longer with "…" (the whole name is in the curve's tooltip)
        legend=alt.Legend(orient="bottom", direction="vertical", labelLimit=320,
                          labelExpr=f"{json.dumps(wrapped)}[datum.label] || datum.label"),
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
    head = (  # the current curve's last point: a dot, and its epoch, from the curve's own rows
        alt.Chart()
        .transform_filter(f"indexof(datum.run, {CURRENT_PREFIX!r}) == 0")
        .transform_joinaggregate(last="max(epoch)")
        .transform_filter("datum.epoch == datum.last")
        .encode(x=x, y=y, tooltip=tooltip)
    )
    rules = reference_rules(floor, start_loss, held_out, heldout_floor, past)
    rules["color"] = [c or colours.get(run, START_COLOR)
                      for c, run in zip(rules["color"], rules["run"])]
    places = label_places(rules["loss"].tolist(), top, height)
    rules["side"] = [side for side, _ in places]
    rules["at"] = [at for _, at in places]
    rules["x"] = [right if side == "right" else 0 for side, _ in places]
    rule = (
        alt.Chart(rules).mark_rule(strokeDash=[8, 6], strokeWidth=3)
        .encode(y=alt.Y("loss:Q"), color=alt.Color("color:N", scale=None),
                opacity=alt.condition(alt.datum.run == "this run", alt.value(1.0), alt.value(0.8)),
                tooltip=[alt.Tooltip("what:N", title="reference")])
    )
    text = []
    for side in ("right", "left"):  # each label on a white halo, so a curve never hides it
        rows = rules[rules["side"] == side]
        if not len(rows):
            continue
        base = alt.Chart(rows).encode(
            x=alt.X("x:Q"), y=alt.Y("at:Q"), text="label:N",
            tooltip=[alt.Tooltip("what:N", title="reference")])
        style = dict(align=side, baseline="middle", fontSize=LABEL_SIZE, fontWeight="bold",
                     dx=-6 if side == "right" else 6)
        text += [base.mark_text(stroke="white", strokeWidth=6, strokeJoin="round",
                                fill="white", **style),
                 base.mark_text(**style).encode(color=alt.Color("color:N", scale=None))]
    return (
        alt.layer(rule, lines, hover, *text,
                  head.mark_circle(size=110, color=CURRENT_COLOR, opacity=1, clip=True),
                  *[  # under the curve's end, left of it: a falling curve is above there
                      head.transform_calculate(head="'epoch ' + datum.epoch")
                      .mark_text(align="right", baseline="top", dx=-8, dy=10,
                                 fontSize=LABEL_SIZE, fontWeight="bold", **paint)
                      .encode(text="head:N")
                      for paint in (dict(stroke="white", strokeWidth=6, fill="white"),
                                    dict(color=CURRENT_COLOR))],
                  data=runs)
        # the plot keeps its height, however many legend lines there are
        .properties(height=height + LEGEND_ROW * sum(map(len, wrapped.values())))
        .configure_axis(labelFontSize=LABEL_SIZE, titleFontSize=TITLE_SIZE)
        .configure_legend(labelFontSize=LABEL_SIZE, symbolStrokeWidth=4)
    )
