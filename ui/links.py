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

Long text cannot go in a link (see `LINK_TEXT_MAX`): `text_binding` binds a text box only while
its text fits, and the page says when a link leaves the text out.

`link_problem` is that check alone, without Streamlit (unit-tested). `reset_when_changed` resets
a bound widget whose range depends on other settings when they change.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence
from urllib.parse import quote_plus

import streamlit as st
from streamlit.errors import StreamlitAPIException

from ui.plain_text import plain

RAW_SHOWN = 40  # characters of a bad value quoted back in the notice
#: Longest text (in URL characters, once encoded) a link carries. A 20,000-character text makes
#: a URL of up to 240,000 characters (an emoji is 12): Streamlit's server answered
#: "400 Bad Request" to 180,000 (measured; 100,000 still worked), and a proxy in front of a class
#: server (nginx: 8 kB) refuses far sooner. 4,000 is a long paragraph of English, or about 440
#: characters of Chinese.
LINK_TEXT_MAX = 4_000
OPTIONS_LISTED = 60  # a choice whose options fit in this many characters lists them


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
    expected: str | None = None,
) -> str | None:
    """What is wrong with a link's raw `values` for one setting (Markdown), or None if nothing.

    The kind of setting follows from the arguments: `options` (the labels a radio, select box,
    pills or select slider shows; `empty_ok` when nothing selected is allowed), a whole number
    from `min_value` to `max_value` (a slider), a bool `default` (a toggle), else text cut at
    `max_chars`. `show` formats the default for the notice; `expected` says in words what a
    valid value is (else the notice lists a few options, or names the range).

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
    fallback = f"so the default ({show(default)}) is used"  # the page's own words: no escaping
    if options is None and min_value is None and not isinstance(default, bool):  # text
        if max_chars is not None and len(raw) > max_chars:
            return (f"The link's {label} has {len(raw):,} characters; only the first "
                    f"{max_chars:,} are used.")
        return None
    if options is not None:
        if raw in options or (raw == "" and empty_ok):
            return None
        names = ", ".join(options)
        listed = (f" ({expected})" if expected else
                  f" (one of: {names})" if len(names) <= OPTIONS_LISTED else "")
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
                f"This page's settings are: {', '.join(f'`{k}`' for k in keys)}.",
                icon=":material/link_off:")


def fits_in_link(text: str) -> bool:
    """Whether `text` is short enough to travel in a link (see `LINK_TEXT_MAX`)."""
    return len(quote_plus(text)) <= LINK_TEXT_MAX


def text_binding(key: str, label: str, default: str = "") -> str | None:
    """Just before a text box: its ``bind``: "query-params" while its text fits in a link.

    An unbound box is left out of the link (Streamlit removes its parameter). When the text is
    short again, its value goes back in the URL here: Streamlit writes a bound widget's value to
    the URL only when it changes while bound. A link whose text is too long (made by hand) gets
    a notice and the default.
    """
    opening = key not in st.session_state
    text = st.query_params.get(key, default) if opening else st.session_state[key]
    fits = fits_in_link(text or "")
    was_bound = st.session_state.get(f"_bound_{key}")
    st.session_state[f"_bound_{key}"] = fits
    if opening and not fits:
        st.info(f"The link's {label} is too long for a link ({len(text):,} characters), so the "
                "default is used.", icon=":material/link_off:")
        try:
            del st.query_params[key]
        except (KeyError, StreamlitAPIException):
            pass
    elif not opening and fits and was_bound is False and text != default:
        st.query_params[key] = text
    return "query-params" if fits else None


def left_out_note(label: str, text: str) -> None:
    """Under a text box whose text is too long for a link: say that a shared link leaves it out."""
    st.caption(f":material/link_off: This {label} is too long to go in a link ({len(text):,} "
               "characters): a shared link carries the other settings, so send the text itself "
               "another way.")


def reset_when_changed(key: str, value: Any, *, because: Any) -> None:
    """Before a bound widget whose meaning depends on something else: reset it when that changes.

    Build a BPE's step slider counts the merges of one training. When the training changes
    (`because`: its text, merges, pre-split), the slider moves to `value` (all the new merges)
    instead of keeping a step of the old one. A link being opened is not a change: its step is
    kept. The widget must keep one identity whatever its range (a select slider does; a
    slider's identity includes its max, and a bound slider with a new identity takes its value
    from the URL or from session state depending on how it was last set).
    """
    marker = f"_{key}_depends_on"
    before = st.session_state.get(marker)
    st.session_state[marker] = because
    if before is not None and before != because and key in st.session_state:
        st.session_state[key] = value


def share_caption(note: str = "") -> None:
    """The line that tells a teacher how to share the page as it is set up now."""
    st.caption(":material/link: **Share these settings:** copy the address bar. Whoever opens "
               "that link sees this page set up the same way." + (f" {note}" if note else ""))
