"""Each linked setting declared once: its key, its name in a link, its default and its range.

A setting that lives in the address bar used to be written three times: in the page's
``LINK_KEYS``, in a `ui.links.check_link` call, and again in its widget with the same range and
default. Here it is one object, declared where the page's settings are::

    BLOCK = Number("train_block", "block size", 5, 1, 16)
    ...
    block_size = BLOCK.slider(f"Block size (tokens of context: {unit})", help="...")

Making the widget first reads the opened link (`check_link` with that very range and default:
a bad value gets its notice, the link then holds what is used), then draws the widget bound to
the address bar under the setting's key (``bind="query-params"``, and ``persist_state`` when
the setting asks for it), with the same range and default. `keys` lists a page's declared
settings for `ui.links.check_unknown_settings`.

A range that depends on other settings (the heads that divide d_model, the epochs kept by a
run) is given when the widget is made: ``HEADS.selectbox(label, options=head_choices(d))``;
the link is read against the same options.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Sequence

import streamlit as st

from ui.links import check_link

#: Every setting declared so far, by key (a page module runs again on every rerun: the same
#: key declared again replaces its entry, so the list stays one per setting).
_DECLARED: dict[str, "Setting"] = {}
ON_OFF = {True: "on", False: "off"}


def keys(prefix: str) -> tuple[str, ...]:
    """The keys of the declared settings that start with `prefix` (a page's ``train_``...).

    >>> _ = Flag("doc_on", "it", False); keys("doc_")
    ('doc_on',)
    """
    return tuple(key for key in _DECLARED if key.startswith(prefix))


class Setting:
    """One setting in the address bar: its `key`, its `name` in a link notice, its `default`;
    `persist`: also keep the value in the session when the page is left (``persist_state``).

    Every widget method takes `container` (a column: the notice is drawn there too), and `name`
    or `default` when they depend on the page's data (``max new words``, a corpus's prompt)."""

    def __init__(self, key: str, name: str, default: Any, *, persist: bool = False):
        self.key, self.name, self.default, self.persist = key, name, default, persist
        _DECLARED[key] = self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.key!r}, default={self.default!r})"

    def _bound(self, bind: str | None = "query-params") -> dict:
        kwargs: dict[str, Any] = {"key": self.key}
        if bind is not None:
            kwargs["bind"] = bind
        if self.persist:
            kwargs["persist_state"] = "session"
        return kwargs

    def _check(self, container, name: str | None, **spec) -> None:
        """`check_link` for this setting, its notice in `container`."""
        with contextlib.nullcontext() if container is st else container:
            check_link(self.key, name or self.name, **spec)


class Number(Setting):
    """A number from `min_value` to `max_value` in steps of `step` (1: whole numbers; None: any
    decimal in range). `show` words the default in a notice (e.g. ``"{:,}".format``)."""

    def __init__(self, key: str, name: str, default, min_value, max_value, *, step=1,
                 show: Callable[[Any], str] | None = None, persist: bool = False):
        super().__init__(key, name, default, persist=persist)
        self.min_value, self.max_value, self.step, self.show = min_value, max_value, step, show

    def check(self, container=st, name: str | None = None) -> None:
        spec = {"default": self.default, "min_value": self.min_value,
                "max_value": self.max_value, "step": self.step}
        if self.show is not None:
            spec["show"] = self.show
        self._check(container, name, **spec)

    def slider(self, label: str, *, widget_step=None, container=st, name: str | None = None,
               checked: bool = False, **kwargs):
        """`st.slider`; `widget_step`: the slider's own step when it differs from the link's;
        `checked`: the link was read already (`check`, above a row of columns)."""
        if not checked:
            self.check(container, name)
        step = widget_step if widget_step is not None else self.step
        return container.slider(label, self.min_value, self.max_value, self.default,
                                **({"step": step} if step is not None else {}),
                                **self._bound(), **kwargs)

    def number_input(self, label: str, *, container=st, name: str | None = None,
                     checked: bool = False, **kwargs):
        if not checked:
            self.check(container, name)
        return container.number_input(label, self.min_value, self.max_value, self.default,
                                      **self._bound(), **kwargs)


class Choice(Setting):
    """One of `options`; a link holds the label `format_func` shows (as Streamlit writes it).
    `empty_ok`: nothing chosen is allowed. `expected`: a valid value in words, for a notice.
    Options that depend on the page's data are given when the widget is made."""

    def __init__(self, key: str, name: str, default, options: Sequence[Any] = (), *,
                 format_func: Callable[[Any], str] = str, empty_ok: bool = False,
                 expected: str | None = None, persist: bool = False):
        super().__init__(key, name, default, persist=persist)
        self.options, self.format_func = tuple(options), format_func
        self.empty_ok, self.expected = empty_ok, expected

    def check(self, options: Sequence[Any], default: Any, format_func=None, container=st,
              expected: str | None = None) -> None:
        shown = format_func or self.format_func
        spec: dict[str, Any] = {"options": [shown(o) for o in options], "default": shown(default)}
        if self.empty_ok:
            spec["empty_ok"] = True
        if expected or self.expected:
            spec["expected"] = expected or self.expected
        self._check(container, None, **spec)

    def _widget(self, make: str, label: str, *, options=None, default=None, container=st,
                bind="query-params", expected=None, checked: bool = False, **kwargs):
        options = tuple(self.options if options is None else options)
        default = self.default if default is None else default
        if self.format_func is not str:
            kwargs.setdefault("format_func", self.format_func)
        if not checked:  # True: `check` was called earlier
            self.check(options, default, kwargs.get("format_func"), container, expected)
        if _VALUE_ARG[make] == "index":
            initial = {"index": options.index(default) if default in options else 0}
        else:
            initial = {_VALUE_ARG[make]: default}
        return getattr(container, make)(label, options, **initial, **self._bound(bind),
                                        **kwargs)

    # Each takes `options` and `default` (when they depend on the page's data), `container`,
    # `bind`, `expected` and `checked`, then the widget's own keyword arguments.
    def selectbox(self, label: str, **kwargs):
        return self._widget("selectbox", label, **kwargs)

    def radio(self, label: str, **kwargs):
        return self._widget("radio", label, **kwargs)

    def select_slider(self, label: str, **kwargs):
        return self._widget("select_slider", label, **kwargs)

    def pills(self, label: str, **kwargs):
        return self._widget("pills", label, **kwargs)

    def segmented_control(self, label: str, **kwargs):
        return self._widget("segmented_control", label, **kwargs)


#: How each choice widget takes its starting value.
_VALUE_ARG = {"selectbox": "index", "radio": "index", "select_slider": "value",
              "pills": "default", "segmented_control": "default"}


class Flag(Setting):
    """On or off (a toggle); a notice says "on" / "off"."""

    def check(self, container=st) -> None:
        self._check(container, None, default=self.default, show=ON_OFF.get)

    def toggle(self, label: str, *, container=st, checked: bool = False, **kwargs):
        """`checked`: the link was read already (`check`, above a row of columns)."""
        if not checked:
            self.check(container)
        return container.toggle(label, self.default, **self._bound(), **kwargs)


class Text(Setting):
    """Text up to `max_chars` (a longer one in a link is cut, and the notice says so)."""

    def __init__(self, key: str, name: str, default: str, *, max_chars: int | None = None,
                 persist: bool = False):
        super().__init__(key, name, default, persist=persist)
        self.max_chars = max_chars

    def _text(self, make: str, label: str, container, bind, default, kwargs):
        default = self.default if default is None else default
        if bind is not None:  # a text too long for a link is not read from one either
            self._check(container, None, default=default, max_chars=self.max_chars)
        if self.max_chars is not None:
            kwargs.setdefault("max_chars", self.max_chars)
        return getattr(container, make)(label, default, **self._bound(bind), **kwargs)

    def text_input(self, label: str, *, container=st, bind="query-params", default=None,
                   **kwargs):
        return self._text("text_input", label, container, bind, default, kwargs)

    def text_area(self, label: str, *, container=st, bind="query-params", default=None,
                  **kwargs):
        """`bind`: None while a text too long for a link is in the box (`ui.links.text_binding`)."""
        return self._text("text_area", label, container, bind, default, kwargs)
