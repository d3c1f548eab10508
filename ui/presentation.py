"""Presentation mode: text and chart labels large enough to read from the back of a classroom.

A toggle in the shared sidebar (app.py), kept in the link (``?present=true``), so a teacher can
bookmark the projector's view. The styling is in two pure parts, tested without Streamlit:

- `css`: the page's own text (captions readable in both modes: full opacity, not small grey;
  in presentation mode every size a step larger);
- `styled`: a chart's Vega-Lite spec with its text at least `min_font_px` (14 px, 20 px when
  presenting), applied where a chart is drawn (``ui.charts``), so the chart builders in
  ``minillm.charts`` stay pure and a notebook gets the same charts as before.

>>> spec = styled({"mark": {"type": "text", "fontSize": 9}}, present=False)
>>> spec["mark"]["fontSize"], spec["config"]["axis"]["labelFontSize"]
(14, 14)
>>> styled({"mark": "bar"}, present=True)["config"]["legend"]["labelFontSize"]
20
>>> styled({"config": {"axis": {"labelFontSize": 30}}}, present=False)["config"]["axis"]["labelFontSize"]
30
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from ui import linked

PRESENT_KEY = "present"  # the toggle's key and its name in the link
PRESENT = linked.Flag(PRESENT_KEY, "presentation mode", False)

NORMAL_MIN_PX = 14
PRESENT_MIN_PX = 20
ROOT_FONT_PX = {False: 17, True: 22}  # 17 is .streamlit/config.toml's theme.baseFontSize
#: Below this width Streamlit stacks columns: a phone's layout (tables, the wide-or-narrow charts).
PHONE_MAX_PX = 640


def min_font_px(present: bool) -> int:
    return PRESENT_MIN_PX if present else NORMAL_MIN_PX


def chart_config(present: bool) -> dict[str, Any]:
    """Vega-Lite config: every kind of chart text at the mode's sizes (titles a step larger)."""
    label = min_font_px(present)
    title = label + 2
    return {
        "axis": {"labelFontSize": label, "titleFontSize": title},
        "legend": {"labelFontSize": label, "titleFontSize": title},
        "header": {"labelFontSize": label, "titleFontSize": title},
        "title": {"fontSize": title + 2, "subtitleFontSize": label},
        "text": {"fontSize": label},
        "mark": {"fontSize": label},
    }


def _merge(base: dict, over: dict) -> dict:
    """`over` on top of `base`, nested dicts merged (neither changed)."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _raise_fonts(node: Any, floor: int) -> Any:
    """A copy of a spec with every numeric font size below `floor` raised to it.

    >>> _raise_fonts({"layer": [{"mark": {"fontSize": 11}}], "encoding": {"x": {"axis":
    ...     {"labelFontSize": 10, "labelAngle": 0}}}}, 14)
    {'layer': [{'mark': {'fontSize': 14}}], 'encoding': {'x': {'axis': {'labelFontSize': 14, 'labelAngle': 0}}}}
    """
    if isinstance(node, dict):
        return {key: (max(value, floor) if _is_font_size(key, value)
                      else value if key in _DATA_KEYS else _raise_fonts(value, floor))
                for key, value in node.items()}
    if isinstance(node, list):
        return [_raise_fonts(item, floor) for item in node]
    return node


_DATA_KEYS = {"data", "datasets"}  # rows, not styling: left as they are (and not walked)


def _is_font_size(key: str, value: Any) -> bool:
    return (key == "fontSize" or key.endswith("FontSize")) and isinstance(value, (int, float)) \
        and not isinstance(value, bool)


def styled(spec: dict, present: bool) -> dict:
    """`spec` with its text at the mode's sizes: the config under the chart's own, then every
    font size (the chart's own included) raised to at least `min_font_px`. `spec` is unchanged."""
    own = spec.get("config", {})
    spec = {**spec, "config": _merge(chart_config(present), own)}
    return _raise_fonts(spec, min_font_px(present))


def css(present: bool) -> str:
    """The page's own CSS: readable captions in both modes; everything larger when presenting.

    >>> "opacity: 1" in css(False), "22px" in css(True), "22px" in css(False)
    (True, True, False)
    """
    rules = [
        # Streamlit draws captions small, grey and at 80% opacity: too faint on a projector.
        "[data-testid='stCaptionContainer'] { opacity: 1; font-size: 0.95rem;"
        " color: inherit; }",
        # A metric's label and a page link's text are cut with "..." when the column is
        # narrow (a phone, or the larger presentation text): let them wrap instead.
        "[data-testid='stMetricLabel'] *, [data-testid='stPageLink-NavLink'] *"
        " { white-space: normal !important; overflow: visible !important;"
        " text-overflow: clip !important; }",
        # On a phone a table keeps less padding and 14 px text, so five columns fit unscrolled.
        f"@media (max-width: {PHONE_MAX_PX}px) {{ [data-testid='stTable'] th,"
        " [data-testid='stTable'] td"
        " { padding: 0.35rem 0.2rem !important; font-size: 0.85rem !important; } }",
    ]
    if present:
        rules += [
            f"html {{ font-size: {ROOT_FONT_PX[True]}px; }}",
            # Widget labels and help text use fixed sizes in places: follow the root size.
            "[data-testid='stWidgetLabel'] p, [data-testid='stMarkdownContainer'] p,"
            " [data-testid='stMarkdownContainer'] li, [data-testid='stCaptionContainer']"
            " { font-size: 1rem; }",
            "[data-testid='stSidebarNav'] span { font-size: 1rem; }",
        ]
    return "<style>\n" + "\n".join(rules) + "\n</style>"


def is_on() -> bool:
    """Whether this session shows the presentation mode (set by the shared sidebar's toggle)."""
    return bool(st.session_state.get(PRESENT_KEY, False))


def sidebar_toggle() -> bool:
    """The shared sidebar's toggle, kept in the link, and this run's CSS; returns whether on."""
    PRESENT.check()  # a bad link's notice on the page itself: a phone's sidebar starts closed
    present = PRESENT.toggle(
        "Presentation mode", container=st.sidebar, checked=True,
        help="Large text and chart labels, to read on a projector from the back of the room. "
             "The link keeps it: bookmark the page to open it this way.")
    st.html(css(present))
    return present
