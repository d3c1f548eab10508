"""Shareable links: every setting of a page lives in the address bar.

A teacher sets a page up, copies the address bar and sends the link; every student who opens it
sees the same settings. Streamlit does the work: a widget made with ``bind="query-params"`` and a
``key`` writes its value into the URL under that key whenever it differs from the widget's
default (``/build_bpe?bpe_merges=50``), and takes its value from the URL when a link is opened.
Keys are short and start with the page's prefix (``wvt_``, ``cmp_``, ``bpe_``): no two pages
share one, and a teacher can read and edit a link by hand.

What Streamlit does not do is say anything about a value it cannot use: ``?bpe_merges=abc`` or
``?bpe_merges=99999`` is dropped in silence, and the student sees the default instead of what
the teacher meant. Worse, some values reach a widget that cannot take them: ``?train_epochs=inf``
made ``st.number_input`` raise, on every reload. So the app reads a link's value itself, before
Streamlit does: `check_link`, called just before the widget is made, parses the raw value,
decides what is used (a fraction in range: the nearest whole number or step; anything else
unusable, out of range or not finite: the default), puts exactly that into the link, so the
widget only ever sees a value it can take, and says so in a plain notice:

    The link asked for merges = 'abc', which isn't a valid choice (a whole number from 1 to
    2,000), so the default (200) is used.

Where a page's widgets sit out of sight (Train's settings are in a collapsed expander), the page
wraps them in `link_notices`, and their notices are shown above them instead.

Long text cannot go in a link (see `LINK_TEXT_MAX`): `text_binding` binds a text box only while
its text fits, and the page says when a link leaves the text out.

`read_link` (and `link_problem`, its notice alone) is that decision without Streamlit
(unit-tested). `reset_when_changed` resets a bound widget whose range depends on other settings
when they change.
"""

from __future__ import annotations

import contextlib
import math
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Callable, Iterator, Sequence
from urllib.parse import quote_plus

import streamlit as st
from streamlit.errors import StreamlitAPIException
from streamlit.runtime.scriptrunner import get_script_run_ctx

from ui.plain_text import plain

RAW_SHOWN = 40  # characters of a bad value quoted back in the notice
#: Longest text (in URL characters, once encoded) a link carries. A 20,000-character text makes
#: a URL of up to 240,000 characters (an emoji is 12): Streamlit's server answered
#: "400 Bad Request" to 180,000 (measured; 100,000 still worked), and a proxy in front of a class
#: server (nginx: 8 kB) refuses far sooner. 4,000 is a long paragraph of English, or about 440
#: characters of Chinese.
LINK_TEXT_MAX = 4_000
OPTIONS_LISTED = 60  # a choice whose options fit in this many characters lists them


#: Where link notices go while a page is inside `link_notices` (else: where the widget is).
_NOTICE_BOX: ContextVar[Any] = ContextVar("link_notice_box", default=None)


@dataclass(frozen=True)
class LinkValue:
    """What a link's raw values for one setting come to."""

    #: The notice (Markdown), or None when the link's value is used as it is.
    problem: str | None
    #: What the link should hold for the widget to take (its own canonical spelling, e.g.
    #: '50' for '5e1'), or None: nothing, so the widget's default applies.
    value: str | None


def _whole(number: float) -> str:
    return f"{number:,.0f}"


def _shown(value: Any) -> str:
    """A default or used value as the notice words it when the page gives no `show`."""
    if isinstance(value, float):
        return f"{value:,g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _number_value(raw: str, min_value: float, max_value: float,
                  step: float | None) -> tuple[Decimal | None, Decimal | None]:
    """(the number `raw` asks for, the nearest one a widget from min to max by `step` takes).

    Both None when `raw` is no number, or not a finite one in range: the default applies. The
    parse is Python's float, as Streamlit's (' 50', '+50', '5e1' and '１００' are numbers); the
    nearest step is worked out in decimal, so 0.25 is halfway between 0.2 and 0.3 and goes up.
    """
    try:
        number = float(raw)
    except ValueError:
        return None, None
    if not (math.isfinite(number) and min_value <= number <= max_value):
        return None, None
    asked = Decimal(repr(number))
    if step is None:
        return asked, asked
    low, size = Decimal(repr(min_value)), Decimal(repr(step))
    steps = ((asked - low) / size).to_integral_value(rounding=ROUND_HALF_UP)
    return asked, min(low + steps * size, Decimal(repr(max_value)))


def read_link(
    label: str,
    values: Sequence[str],
    *,
    default: Any,
    options: Sequence[str] | None = None,
    min_value: float | None = None,
    max_value: float | None = None,
    step: float | None = 1,
    max_chars: int | None = None,
    empty_ok: bool = False,
    show: Callable[[Any], str] | None = None,
    expected: str | None = None,
) -> LinkValue:
    """What a link's raw `values` for one setting come to: the notice and the value used.

    The kind of setting follows from the arguments: `options` (the labels a radio, select box,
    pills or select slider shows; `empty_ok` when nothing selected is allowed), a number from
    `min_value` to `max_value` in steps of `step` (1, the default: a whole number, as a slider
    or number input of ints; None: any decimal in range), a bool `default` (a toggle), else text
    cut at `max_chars`. `show` formats the default (and a number used) for the notice;
    `expected` says in words what a valid value is (else the notice lists a few options, or
    names the range). A setting given more than once is read from its last value, as
    Streamlit does.

    >>> read_link("epochs", ["50.6"], default=300, min_value=10, max_value=2000)
    LinkValue(problem="The link asked for epochs = '50\\\\.6', which isn't a whole number, so the nearest whole number (51) is used.", value='51')
    >>> read_link("epochs", ["inf"], default=300, min_value=10, max_value=2000).value is None
    True
    """
    show = show or _shown
    if len(values) > 1:
        last = read_link(label, values[-1:], default=default, options=options,
                         min_value=min_value, max_value=max_value, step=step,
                         max_chars=max_chars, empty_ok=empty_ok, show=show, expected=expected)
        quoted = ", ".join(f"'{plain(v, max_chars=RAW_SHOWN)}'" for v in values[:4])
        more = ", …" if len(values) > 4 else ""
        given = f"The link gives {label} more than once ({quoted}{more})"
        if last.problem:
            return LinkValue(f"{given}; only the last one counts. {last.problem}", last.value)
        if options is None and min_value is not None:  # a number: as the page writes it
            number = float(last.value)
            used = show(int(number) if step == 1 else number)
        else:
            used = plain(values[-1], max_chars=RAW_SHOWN)
        return LinkValue(f"{given}, so the last one ({used}) is used.", last.value)
    raw = values[0] if values else ""
    fallback = f"so the default ({show(default)}) is used"  # the page's own words: no escaping
    quoted = f"'{plain(raw, max_chars=RAW_SHOWN)}'"
    if options is None and min_value is None and not isinstance(default, bool):  # text
        if max_chars is not None and len(raw) > max_chars:
            return LinkValue(f"The link's {label} has {len(raw):,} characters; only the first "
                             f"{max_chars:,} are used.", raw[:max_chars])
        return LinkValue(None, raw)
    if options is not None:
        if raw in options or (raw == "" and empty_ok):
            return LinkValue(None, raw)
        names = ", ".join(options)
        listed = (f" ({expected})" if expected else
                  f" (one of: {names})" if len(names) <= OPTIONS_LISTED else "")
    elif isinstance(default, bool):
        if raw.strip().lower() in ("true", "false"):
            return LinkValue(None, raw)
        listed = " (true or false)"
    else:
        whole = step == 1
        if whole:
            listed = f" (a whole number from {_whole(min_value)} to {_whole(max_value)})"
        else:
            steps = f" in steps of {step:g}" if step is not None else ""
            listed = f" (a number from {min_value:g} to {max_value:g}{steps})"
        asked, used = _number_value(raw, min_value, max_value, step)
        if used is not None:
            number = int(used) if whole else float(used)
            value = str(number) if whole else repr(number)
            if used == asked:
                return LinkValue(None, value)
            what = "a whole number" if whole else f"on the slider's steps of {step:g}"
            nearest = "whole number" if whole else "step"
            return LinkValue(f"The link asked for {label} = {quoted}, which isn't {what}, so "
                             f"the nearest {nearest} ({show(number)}) is used.", value)
    return LinkValue(f"The link asked for {label} = {quoted}, which isn't a valid "
                     f"choice{listed}, {fallback}.", None)


def link_problem(label: str, values: Sequence[str], **spec: Any) -> str | None:
    """What is wrong with a link's raw `values` for one setting (Markdown), or None if nothing.

    `read_link`'s notice alone; `spec` is its keyword arguments.

    >>> link_problem("merges", ["abc"], default=200, min_value=1, max_value=2000)
    "The link asked for merges = 'abc', which isn't a valid choice (a whole number from 1 to 2,000), so the default (200) is used."
    >>> link_problem("merges", ["50"], default=200, min_value=1, max_value=2000) is None
    True
    """
    return read_link(label, values, **spec).problem


def _notice(text: str) -> None:
    """A link notice: above the page's linked widgets (see `link_notices`), else right here."""
    (_NOTICE_BOX.get() or st).info(text, icon=":material/link_off:")


@contextlib.contextmanager
def link_notices() -> Iterator[Any]:
    """Around widgets a student may not see at once (a collapsed expander): their link notices.

    ``with link_notices(), st.expander(...):`` makes a box just above the expander, and every
    notice of `check_link` (and `text_binding`) inside the block is shown there, where a student
    who opened the link reads it, instead of next to a widget folded away. Outside the block,
    notices go where the widget is again.
    """
    box = st.container()
    token = _NOTICE_BOX.set(box)
    try:
        yield box
    finally:
        _NOTICE_BOX.reset(token)


def _link_says(key: str, value: str | None) -> None:
    """Make the opened link hold `value` for `key` (None: nothing), before its widget is made.

    Streamlit seeds a bound widget from its own copy of the URL as the page was opened, not from
    ``st.query_params``, and raises inside the widget on some values (``inf`` in a number
    input). So both change here: the address bar (what a reload or a copied link carries) and
    that copy (what the widget is made from). Both are Streamlit internals of 1.67; the tests
    of tests/test_link_numbers.py fail if they move.
    """
    ctx = get_script_run_ctx()
    if ctx is None:  # bare mode: no page, no link
        return
    with ctx.session_state.query_params() as params:
        if value is None:
            params.remove_param(key)
            params._initial_query_params.pop(key, None)
        else:
            params.set_corrected_value(key, value, "string_value")
            params._initial_query_params[key] = [value]


def _opening(key: str) -> bool:
    """Whether the link's value for `key` will seed its widget in this run.

    When a link is opened (the widget's key is not in session state yet), and when the student
    goes Back or Forward to an address: Streamlit then takes the URL's value over the widget's
    own, and every correction of ours left an earlier address in the browser's history.
    """
    if key not in st.query_params:
        return False
    ctx = get_script_run_ctx()
    return key not in st.session_state or bool(ctx and ctx.is_history_navigation)


def check_link(key: str, label: str, **spec: Any) -> None:
    """Before the widget bound to `key` is made: read the opened link's value for it.

    The link then holds the value used (see `read_link`), so the widget never sees one it cannot
    take, and a notice says what was wrong. Only a link being opened counts: once the widget
    exists, the URL holds values the widget itself wrote. `spec` is `read_link`'s keyword
    arguments.
    """
    if not _opening(key):
        return
    values = st.query_params.get_all(key)
    reading = read_link(label, values, **spec)
    if reading.value is None or list(values) != [reading.value]:
        _link_says(key, reading.value)
    if reading.problem:
        _notice(reading.problem)


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
        _notice(f"The link's {label} is too long for a link ({len(text):,} characters), so the "
                "default is used.")
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
