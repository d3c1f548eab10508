"""Shareable links for the Model lab: what `ui.links` does not cover yet.

`ui.links.check_link` treats a number range as whole numbers (a slider of merges). Generate's
temperature is a decimal from 0.1 to 3.0, so `check_decimal_link` gives the same plain notice
for it. Everything else goes straight to `ui.links`.
"""

from __future__ import annotations

import math

import streamlit as st

from ui.links import RAW_SHOWN, link_problem
from ui.plain_text import plain


def decimal_problem(label: str, values: list[str], *, default: float, min_value: float,
                    max_value: float) -> str | None:
    """What is wrong with a link's raw `values` for a decimal setting, or None."""
    if len(values) != 1:  # several values: ui.links words that case
        return link_problem(label, values, default=str(default), max_chars=None) or None
    raw = values[0]
    try:
        number = float(raw)
    except ValueError:
        number = math.nan
    if math.isfinite(number) and min_value <= number <= max_value:
        return None
    return (f"The link asked for {label} = '{plain(raw, max_chars=RAW_SHOWN)}', which isn't a "
            f"valid choice (a number from {min_value:g} to {max_value:g}), so the default "
            f"({default:g}) is used.")


def check_decimal_link(key: str, label: str, **spec) -> None:
    """Like `ui.links.check_link`, for a decimal slider (`default`, `min_value`, `max_value`)."""
    if key in st.session_state or key not in st.query_params:
        return
    problem = decimal_problem(label, st.query_params.get_all(key), **spec)
    if problem:
        st.info(problem, icon=":material/link_off:")
