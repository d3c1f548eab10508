"""Shareable links: every setting of a page lives in the address bar.

A teacher sets a page up, copies the address bar and sends the link; every student who opens it
sees the same settings. Streamlit does the work: a widget made with ``bind="query-params"`` and a
``key`` writes its value into the URL under that key whenever it differs from the widget's
default (``/build_bpe?bpe_merges=50``), and takes its value from the URL when a link is opened.
Keys are short and start with the page's prefix (``wvt_``, ``cmp_``, ``bpe_``): no two pages
share one, and a teacher can read and edit a link by hand.

What Streamlit does not do is say anything about a value it cannot use: ``?bpe_merges=abc`` or
``?bpe_merges=99999`` is dropped in silence, and the student sees the default instead of what
the teacher meant. `check_link`, called just before the widget is made, reads the raw value,
asks the question Streamlit will ask, and explains in a plain notice:

    The link asked for merges = 'abc', which isn't a valid choice (a whole number from 1 to
    2,000), so the default (200) is used.

`link_problem` is that check alone, without Streamlit (unit-tested). `keep_in_range` keeps a
bound slider whose range depends on other settings from failing when that range shrinks.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import streamlit as st

from ui.plain_text import plain

RAW_SHOWN = 40  # characters of a bad value quoted back in the notice
OPTIONS_LISTED = 6  # a choice with at most this many options lists them in the notice


def _whole(number: float) -> str:
    return f"{number:,.0f}"


def link_problem(
    label: str,
    values: Sequence[str],
    *,
    default: Any,
    options: Sequence[str] | None = None,
    min_value: int | None = None,
    max_value: int | None = None,
    max_chars: int | None = None,
    empty_ok: bool = False,
    show: Callable[[Any], str] = str,
) -> str | None:
    """What is wrong with a link's raw `values` for one setting (Markdown), or None if nothing.

    The kind of setting follows from the arguments: `options` (the labels a radio, select box,
    pills or select slider shows; `empty_ok` when nothing selected is allowed), a whole number
    from `min_value` to `max_value` (a slider), a bool `default` (a toggle), else text cut at
    `max_chars`. `show` formats the default for the notice.

    >>> link_problem("merges", ["abc"], default=200, min_value=1, max_value=2000)
    "The link asked for merges = 'abc', which isn't a valid choice (a whole number from 1 to 2,000), so the default (200) is used."
    >>> link_problem("merges", ["50"], default=200, min_value=1, max_value=2000) is None
    True
    """
    if len(values) > 1:
        quoted = ", ".join(f"'{plain(v, max_chars=RAW_SHOWN)}'" for v in values[:4])
        more = ", …" if len(values) > 4 else ""
        return (f"The link gives {label} more than once ({quoted}{more}), so only one of them "
                "is used: check the setting below.")
    raw = values[0] if values else ""
    fallback = f"so the default ({plain(show(default))}) is used"
    if options is None and min_value is None and not isinstance(default, bool):  # text
        if max_chars is not None and len(raw) > max_chars:
            return (f"The link's {label} has {len(raw):,} characters; only the first "
                    f"{max_chars:,} are used.")
        return None
    if options is not None:
        if raw in options or (raw == "" and empty_ok):
            return None
        listed = (f" (one of: {', '.join(plain(o) for o in options)})"
                  if len(options) <= OPTIONS_LISTED else "")
    elif isinstance(default, bool):
        if raw.strip().lower() in ("true", "false"):
            return None
        listed = " (true or false)"
    else:
        listed = f" (a whole number from {_whole(min_value)} to {_whole(max_value)})"
        try:
            number = float(raw)  # what Streamlit does with it: ' 50', '+50' and '5e1' are 50
        except ValueError:
            number = math.nan
        if math.isfinite(number) and min_value <= number <= max_value:
            if number == int(number):
                return None
            return (f"The link asked for {label} = '{plain(raw, max_chars=RAW_SHOWN)}', which "
                    f"isn't a whole number, so {_whole(int(number))} is used.")
    return (f"The link asked for {label} = '{plain(raw, max_chars=RAW_SHOWN)}', which isn't a "
            f"valid choice{listed}, {fallback}.")


def check_link(key: str, label: str, **spec: Any) -> None:
    """Before the widget bound to `key` is made: a notice if the opened link's value is unusable.

    Only a link being opened counts: once the widget exists (its key is in session state), the
    URL holds values the widget itself wrote. `spec` is `link_problem`'s keyword arguments.
    """
    if key in st.session_state or key not in st.query_params:
        return
    problem = link_problem(label, st.query_params.get_all(key), **spec)
    if problem:
        st.info(problem, icon=":material/link_off:")


def check_unknown_settings(prefix: str, keys: Sequence[str]) -> None:
    """At the top of a page: name link settings with the page's `prefix` it does not have.

    A hand-edited link with a typo (``bpe_merge=50``) is otherwise ignored in silence.
    """
    if any(key in st.session_state for key in keys):
        return  # not a link being opened: the page has run before in this session
    unknown = [k for k in st.query_params if k.startswith(prefix) and k not in keys]
    if unknown:
        names = ", ".join(plain(k, max_chars=RAW_SHOWN) for k in unknown[:5])
        st.info(f"The link has settings this page doesn't have ({names}), so they are ignored. "
                f"This page's settings are: {', '.join(plain(k) for k in keys)}.",
                icon=":material/link_off:")


def keep_in_range(key: str, min_value: int, max_value: int, *, follow_max: bool = False) -> None:
    """Before a bound slider whose range changes between runs: keep its value inside the range.

    A bound widget remembers its value under its key when the old slider is replaced, and a
    remembered value above the new maximum would stop the page. With `follow_max`, a slider
    that sat at its old maximum moves to the new one (all merges stay "all merges").
    """
    range_key = f"_range_{key}"
    old = st.session_state.get(range_key)
    st.session_state[range_key] = (min_value, max_value)
    if key not in st.session_state or old == (min_value, max_value):
        return
    value = st.session_state[key]
    if follow_max and old is not None and value == old[1]:
        wanted = max_value
    else:
        wanted = min(max(value, min_value), max_value)
    if wanted != value:
        st.session_state[key] = wanted


def share_caption(note: str = "") -> None:
    """The line that tells a teacher how to share the page as it is set up now."""
    st.caption("🔗 **Share these settings:** copy the address bar. Whoever opens "
               "that link sees this page set up the same way." + (f" {note}" if note else ""))
