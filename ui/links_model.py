"""Shareable links for the Model lab: a decimal setting.

`ui.links.check_link` reads a number range as whole numbers by default (a slider of merges).
Generate's temperature is a decimal from 0.1 to 3.0 in steps of 0.1: `check_decimal_link` is
`check_link` with a decimal `step` (None: any decimal in range), so it is read, corrected in the
link and explained by the same code as every other setting.
"""

from __future__ import annotations

from ui.links import check_link


def check_decimal_link(key: str, label: str, *, step: float | None = None, **spec) -> None:
    """Like `ui.links.check_link`, for a decimal slider (`default`, `min_value`, `max_value`,
    and the slider's `step`)."""
    check_link(key, label, step=step, **spec)
