"""One student as a websocket client: Streamlit's own protocol, no browser.

    python bench/ws_driver.py --url http://127.0.0.1:8599 [--sessions 30] [--opening 4]
                              [--server-pid PID]

`bench/load_test.py` drives Chromium; on a 2-core server the browsers eat most of the CPU.
This module speaks to the server the way the browser's JavaScript does, so thirty students
fit in one Python process with almost no CPU. `WsStudent` is importable (load_test.py can
run many in one event loop); ``__main__`` runs the class flow below and prints the numbers.
`abuser_flow` is the student who pastes the largest text the page takes and asks for the
largest run (``load_test.py --abuser``).

The protocol, as streamlit 1.67 speaks it (streamlit/web/server/starlette/
starlette_websocket.py, runtime/app_session.py, and the frontend bundle in streamlit/static):

1. Connect to ``ws://HOST:PORT/_stcore/stream`` with subprotocol ``streamlit`` and an
   ``Origin`` header equal to the Host (when they differ and the origin is not allowed the
   server refuses the handshake: HTTP 403). The browser passes an XSRF token and a
   previous session id as the 2nd and 3rd "subprotocols"; a new session needs neither
   (the XSRF token only unlocks auth cookies). Every frame is one binary protobuf: BackMsg
   up, ForwardMsg down. permessage-deflate is on, as in Chromium.
2. Ask for a run: ``BackMsg.rerun_script`` = ``ClientState``. What the server reads:
   ``page_script_hash`` (empty on the first load) or ``page_name`` (the url path, e.g.
   "train", only used while the hash is empty), ``query_string``, ``widget_states``
   (``WidgetState{id, trigger_value=True}`` is a button click), ``fragment_id`` +
   ``is_auto_rerun`` (a fragment's timer), ``cached_message_hashes`` (see 4) and
   ``context_info`` (timezone, locale, url: what ``st.context`` shows).
3. The run streams ForwardMsgs: ``new_session`` (run starts; ``metadata.run`` has the
   ``script_run_id`` and, for a fragment run, its ``fragment_ids``; its
   ``page_script_hash`` is the page we are on), ``navigation`` (the pages:
   ``app_pages[].url_pathname`` -> ``page_script_hash``), ``delta`` (``new_element`` or
   ``add_block`` at ``metadata.delta_path``; ``delta.fragment_id`` when a fragment drew it),
   ``auto_rerun`` / ``stop_auto_rerun``, ``session_status_changed`` and finally
   ``script_finished`` (FINISHED_SUCCESSFULLY, FINISHED_FRAGMENT_RUN_SUCCESSFULLY,
   FINISHED_EARLY_FOR_RERUN when ``st.rerun()`` or a newer request cut it short, or
   FINISHED_WITH_COMPILE_ERROR). The page model here is what the frontend keeps: elements
   by delta path, each tagged with the run that drew it; when a run finishes successfully
   the elements an older run drew are dropped (all of them after a full run, only the
   fragment's after a fragment run), and a new page (another page_script_hash) starts empty.
4. Message cache, as the browser's ForwardMsgCache: a ForwardMsg with
   ``metadata.cacheable`` is kept by its ``hash``; every rerun sends the kept hashes, and the
   server then sends ``ref_hash`` stubs instead of those (big) elements. After each finished
   run an entry not seen for ``config.max_cached_message_age`` runs is dropped (after a
   fragment run only that fragment's entries age).
5. Fragment timers, as the frontend's ``handleAutoRerun``: ``auto_rerun{interval,
   fragment_id}`` starts a ``setInterval``-like timer (ignored when that fragment already has
   a timer with the same interval) that sends ``rerun_script{fragment_id,
   is_auto_rerun=True}`` with the current widget states every ``interval`` seconds, whether
   or not the previous request has been answered (the browser does not wait either; the
   server coalesces fragment requests into the running ScriptRunner).
   ``stop_auto_rerun{fragment_ids}`` cancels those timers; a ``new_session`` of a full run
   (no fragment ids) cancels all of them (``cleanupAutoReruns``), and so does a page change.
6. Widgets, as the frontend's WidgetStateManager: setting one (`WsStudent.set_widget`) asks
   for a rerun with its new value, in the field its kind uses (`widget_state`: select box and
   radio the option's text, a select slider that text in a list, a slider a list of numbers,
   a toggle a bool, a text area its text, a number input an int or a double by its data
   type). A widget is found by its ``key=``, which ends its id (``$$ID-<hash>-<key>``). Every
   later request, fragment timers included, carries the values set so far; after a full run
   the values of widgets no longer on the page are dropped (``removeInactive``). The query
   string the server last wrote (``page_info_changed``: widgets bound to the URL) goes with
   each request, as the address bar does.

Choices (where this client is simpler than the browser, and why it does not matter here):

- Widget states: the browser resends every widget's current value with each rerun. This
  client sends only the states it set itself (a click's trigger once, a value set with
  `set_widget` every time); the server keeps the values of widgets missing from a request
  from the previous run (session state), so the runs are the same, minus the deserialising
  of ~20 default values.
- No ``app_heartbeat``, no ``/_stcore/host-config`` or static file requests: neither
  changes what the server computes for a run. Websocket pings are left to the server.
- Its timers are punctual; thirty starved browser tabs fire theirs late, so this client
  asks the server for at least as many fragment runs as the browsers did.

Only the stdlib, ``websockets`` and ``streamlit.proto``.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import os
import random
import re
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin, Subprotocol

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState, ContextInfo
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.NumberInput_pb2 import NumberInput
from streamlit.proto.Slider_pb2 import Slider
from streamlit.proto.WidgetStates_pb2 import WidgetState

CONNECT_TIMEOUT = 30.0  # s for the websocket handshake
RUN_TIMEOUT = 120.0  # s for one requested script run to finish
TRAIN_TIMEOUT = 300.0  # s from the Train click to the done marker
METRIC_TIMEOUT = 30.0  # s from the done marker to the summary's metrics (drawn right after it)
MAX_MESSAGE_BYTES = 256 * 2**20  # streamlit's server.maxMessageSize is 200 MB
DONE_MARKER = "Training done:"  # pages/train.py: st.success(f"Training done: ...")
WAITING_MARKER = "Waiting for a free slot"  # pages/train.py, when no training slot is free
NO_MODEL_MARKER = "There is no trained model in this session"  # ui/need_model.py
OUTPUT_CLASS = "mll-out"  # minillm/charts/generate.py: the st.html that holds the text
OUTPUT_DIV = re.compile(r'<div class="mll-out">(.*?)</div>', re.S)  # the text, not the legend

FINISHED = ForwardMsg.ScriptFinishedStatus
RUN_ENDS = {FINISHED.FINISHED_SUCCESSFULLY, FINISHED.FINISHED_FRAGMENT_RUN_SUCCESSFULLY,
            FINISHED.FINISHED_WITH_COMPILE_ERROR}  # not FINISHED_EARLY_FOR_RERUN: more follows
TEXT_FIELDS = ("body", "text", "label", "code_text", "message")  # first one an element has
TAG = re.compile(r"<style.*?</style>|<[^>]+>", re.S)
ID_PREFIX = "$$ID-"  # streamlit/runtime/state/common.py: GENERATED_ELEMENT_ID_PREFIX + "-"
FINAL_LOSS = "Final training loss"  # ui/train_widgets.py: show_summary's first metric
UPSTREAM_HEADER = "X-MiniLLM-Upstream"  # deploy/nginx.conf.template: the server that answered


def cookie_header(cookies: dict[str, str]) -> str:
    """The Cookie header a browser sends for this jar: ``a=1; b=2``."""
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def set_cookies(headers: list[str]) -> dict[str, str]:
    """name -> value of each Set-Cookie header (attributes dropped; a Max-Age=0 cookie is
    set to "", as good as gone for this client).

    >>> set_cookies(["minillm_route=minillm_r2; Path=/; Max-Age=43200; HttpOnly"])
    {'minillm_route': 'minillm_r2'}
    """
    jar = {}
    for header in headers:
        pair = header.split(";", 1)[0]
        name, sep, value = pair.partition("=")
        if sep and name.strip():
            jar[name.strip()] = value.strip()
    return jar


def last_upstream(value: str) -> str:
    """The server that answered, from nginx's $upstream_addr (``A, B`` when it tried A first).

    >>> last_upstream("127.0.0.1:4001, 127.0.0.1:4002")
    '127.0.0.1:4002'
    """
    return value.split(",")[-1].strip()


class StudentError(RuntimeError):
    """The page did something a student would notice: an exception, a closed socket, ..."""


@dataclass
class Element:
    kind: str  # the Element oneof: "markdown", "alert", "button", "html", "progress", ...
    text: str  # what a reader sees: body, label or progress text (html: tags stripped)
    run_id: str  # the script run that drew it (frontend: scriptRunId)
    fragment_id: str = ""  # the fragment that drew it, "" outside fragments
    widget_id: str = ""  # widgets only
    disabled: bool = False
    value: float | None = None  # number_input only: the value the server set (set_value)
    raw: str = ""  # html only: the body as sent
    label: str = ""  # widgets and metrics: the label ("Final training loss"); text is the value
    key: str = ""  # widgets made with key=...: that key (see `user_key`)
    options: tuple[str, ...] = ()  # selectbox, radio, select_slider: the options as shown
    slider_type: int = 0  # slider only: Slider.SLIDER or Slider.SELECT_SLIDER
    data_type: int = 0  # number_input and slider: INT or FLOAT


def plain_text(markup: str) -> str:
    """What a reader sees of some HTML: no tags, no <style>, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(TAG.sub(" ", markup)).split())


def user_key(widget_id: str) -> str:
    """The ``key=`` a widget was made with, from its id (``$$ID-<hash>-<key>``), or "".

    streamlit/elements/lib/utils.py puts the user key after the hash; a widget without one
    has "None" there (runtime/state/common.py: user_key_from_element_id).
    """
    if not widget_id.startswith(ID_PREFIX):
        return ""
    parts = widget_id.split("-", 2)
    return parts[2] if len(parts) == 3 and parts[2] != "None" else ""


def widget_state(element: Element, value) -> WidgetState:
    """The WidgetState a browser sends when a student sets `element` to `value`.

    As the frontend's widgets do (static/js: Selectbox, Radio, Slider, TextArea, Checkbox,
    NumberInput): select box and radio send the option's text as shown (``string_value``), a
    select slider that text in a list (``string_array_value``), a slider its numbers
    (``double_array_value``), a checkbox or toggle ``bool_value``, a text box or area
    ``string_value``, a number input ``int_value`` or ``double_value`` by its data type.
    A value the widget cannot take raises StudentError (a student could not pick it either).
    """
    state = WidgetState(id=element.widget_id)
    name = element.key or element.label
    if element.disabled:
        raise StudentError(f"widget {name!r} is disabled")
    if element.kind in ("selectbox", "radio") or (
            element.kind == "slider" and element.slider_type == Slider.SELECT_SLIDER):
        shown = str(value)
        if shown not in element.options:
            raise StudentError(f"{name!r} has no option {shown!r} (options: "
                               f"{list(element.options)})")
        if element.kind == "slider":
            state.string_array_value.data.append(shown)
        else:
            state.string_value = shown
    elif element.kind == "slider":
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        state.double_array_value.data.extend(float(v) for v in values)
    elif element.kind == "checkbox":
        if not isinstance(value, bool):
            raise StudentError(f"{name!r} is a checkbox or toggle: True or False, not {value!r}")
        state.bool_value = value
    elif element.kind in ("text_area", "text_input"):
        state.string_value = str(value)
    elif element.kind == "number_input":
        if element.data_type == NumberInput.INT:
            state.int_value = int(value)
        else:
            state.double_value = float(value)
    else:
        raise StudentError(f"{name!r} is a {element.kind}: this client cannot set it")
    return state


def element_from_delta(msg: ForwardMsg, run_id: str) -> Element:
    """Element(kind, text, ...) from a ForwardMsg whose delta is a new_element."""
    proto = msg.delta.new_element
    kind = proto.WhichOneof("type") or ""
    inner = getattr(proto, kind) if kind else None
    text = raw = ""
    for name in TEXT_FIELDS:
        if inner is not None and name in inner.DESCRIPTOR.fields_by_name and getattr(inner, name):
            text = getattr(inner, name)
            break
    if kind == "exception":
        text = f"{inner.type}: {inner.message}"
    elif kind == "html":
        raw = inner.body
        text = plain_text(raw)
    fields = inner.DESCRIPTOR.fields_by_name if inner is not None else {}
    value = None
    if kind == "number_input":
        value = inner.value if inner.set_value else inner.default
    widget_id = inner.id if "id" in fields else ""
    return Element(kind, text, run_id, msg.delta.fragment_id,
                   widget_id=widget_id,
                   disabled=bool(inner.disabled) if "disabled" in fields else False,
                   value=value, raw=raw,
                   label=inner.label if "label" in fields else "",
                   key=user_key(widget_id),
                   options=tuple(inner.options) if "options" in fields else (),
                   slider_type=inner.type if kind == "slider" else 0,
                   data_type=inner.data_type if "data_type" in fields else 0)


@dataclass
class Counters:
    runs_started: int = 0
    runs_finished: int = 0  # successful full or fragment runs (RUN_ENDS)
    full_runs_finished: int = 0
    fragment_requests: int = 0  # auto-reruns this client sent
    messages: int = 0
    bytes_in: int = 0
    cache_hits: int = 0


class WsStudent:
    """One browser tab's worth of Streamlit session, driven over the websocket.

    A reader task consumes every ForwardMsg as it arrives (a browser never stops reading)
    and keeps the page model; fragment timers run as their own tasks. The public methods
    send requests and wait, always with a timeout, on conditions of that model.
    """

    def __init__(self, base_url: str, name: str = "student", cookies: dict | None = None):
        parts = urlsplit(base_url)
        self.base_url = base_url.rstrip("/")
        self.host = parts.netloc
        self.ws_url = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}" \
                      f"{parts.path.rstrip('/')}/_stcore/stream"
        self.name = name
        self.ws = None
        self.reader: asyncio.Task | None = None
        self.changed = asyncio.Condition()  # notified after every ForwardMsg
        self.closed_reason = ""
        # The browser's cookie jar for this site (shared by the tabs of one browser: pass the
        # same dict to a reloaded student): what nginx's Set-Cookie sets (minillm_route, its
        # sticky route) goes with the page load and the websocket handshake, as a browser's.
        self.cookies: dict[str, str] = {} if cookies is None else cookies
        self.page_upstream = ""  # X-MiniLLM-Upstream of the page load (behind nginx), or ""
        self.ws_upstream = ""  # ... and of the websocket handshake: must be the same server
        self.dropped_at: float | None = None  # monotonic: the server or proxy closed on us
        self.reruns_for_sidebar = 0  # see join_class
        self._closing = False

        # The page model (what the frontend's state holds).
        self.elements: dict[tuple[int, ...], Element] = {}  # delta path -> element
        self.run_id = ""  # current script_run_id
        self.run_fragment_ids: list[str] = []  # fragments of the current run ([] = full run)
        self.page_hash = ""  # page_script_hash of the page shown
        self.page_name = ""  # url path asked for while page_hash is still ""
        self.pages: dict[str, str] = {}  # url_pathname -> page_script_hash (navigation msg)
        self.script_running = False
        self.page_not_found = False
        self.query_string = ""  # the address bar's query (page_info_changed), sent with reruns
        self.widget_values: dict[str, WidgetState] = {}  # widget id -> the value set here

        # What the session has seen over its life.
        self.exceptions: list[str] = []  # exception elements and compile errors, as text
        self.seen_texts: set[str] = set()  # every element text ever drawn (cheap: small app)
        self.saw_waiting = False
        self.counters = Counters()

        # Browser-side machinery.
        self.timers: dict[str, tuple[float, asyncio.Task]] = {}  # fragment id -> (interval, task)
        self.cache: dict[str, list] = {}  # hash -> [ForwardMsg, run count, fragment id]
        self.cache_runs = 0
        self.max_cached_age = 2  # new_session.config.max_cached_message_age

    # -- connection ---------------------------------------------------------------------

    async def open(self, page_url_path: str = "", timeout: float = RUN_TIMEOUT,
                   query: str = "", load_page: bool = False) -> float:
        """Connect, ask for `page_url_path` (as a browser loading /<path>?<query>), wait for
        the run.

        `load_page`: first GET the page's address over HTTP, as a browser does before its
        JavaScript opens the websocket. Behind nginx that request is where the sticky route
        cookie is drawn (`cookies` keeps it); the websocket then carries it, and
        `page_upstream` / `ws_upstream` say which server answered each.

        Returns the seconds from the connect to the finished run.
        """
        start = time.monotonic()
        self.query_string = query
        if load_page:
            url = f"{self.base_url}/{page_url_path.strip('/')}" + (f"?{query}" if query else "")
            self.page_upstream = await asyncio.to_thread(self._load_page, url)
        headers = {"Cookie": cookie_header(self.cookies)} if self.cookies else None
        try:
            self.ws = await connect(
                self.ws_url,
                origin=Origin(f"http://{self.host}"),
                subprotocols=[Subprotocol("streamlit")],
                additional_headers=headers,
                open_timeout=CONNECT_TIMEOUT,
                max_size=MAX_MESSAGE_BYTES,
                max_queue=None,  # never make the server wait on us
                proxy=None,  # loopback: ignore http_proxy & co
                ping_interval=None,  # the browser sends no pings either
            )
        except (OSError, InvalidStatus, asyncio.TimeoutError) as error:
            raise StudentError(f"{self.name}: no websocket to {self.ws_url}: {error}") from error
        response = getattr(self.ws, "response", None)
        if response is not None:
            self.ws_upstream = last_upstream(response.headers.get(UPSTREAM_HEADER, ""))
        self.reader = asyncio.create_task(self._read(), name=f"{self.name}-reader")
        self.page_name = page_url_path.strip("/")
        await self._rerun_and_wait(timeout)
        return time.monotonic() - start

    def _load_page(self, url: str) -> str:
        """GET `url` with this browser's cookies, keep what Set-Cookie sets; the answering
        server (X-MiniLLM-Upstream), "" when no proxy says."""
        request = urllib.request.Request(url, headers={"Cookie": cookie_header(self.cookies)}
                                         if self.cookies else {})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback
        try:
            with opener.open(request, timeout=CONNECT_TIMEOUT) as answer:
                answer.read()
                headers = answer.headers
        except urllib.error.HTTPError as error:
            raise StudentError(f"{self.name}: loading {url}: HTTP {error.code} "
                               f"{error.reason}") from None
        except OSError as error:
            raise StudentError(f"{self.name}: loading {url}: {error}") from None
        self.cookies.update(set_cookies(headers.get_all("Set-Cookie") or []))
        return last_upstream(headers.get(UPSTREAM_HEADER, ""))

    @property
    def dropped(self) -> bool:
        """The connection was closed by the server's side (the server died, the proxy cut
        it), not by this client: a browser shows "Connection error" and the student reloads."""
        return self.dropped_at is not None

    async def close(self) -> None:
        self._closing = True
        self._cancel_timers()
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.close(), 10)
            except (asyncio.TimeoutError, ConnectionClosed, OSError):
                pass
        if self.reader is not None:
            self.reader.cancel()
            await asyncio.gather(self.reader, return_exceptions=True)

    async def __aenter__(self) -> "WsStudent":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # -- what a student does ----------------------------------------------------------------

    def widget(self, key: str) -> Element:
        """The widget made with ``key=key`` on the page."""
        for element in self.elements.values():
            if element.key == key:
                return element
        keys = sorted(e.key for e in self.elements.values() if e.key)
        raise StudentError(f"{self.name}: no widget with key {key!r} on the page (keys: {keys})")

    async def set_widget(self, key: str, value, timeout: float = RUN_TIMEOUT) -> None:
        """Set the widget made with ``key=key`` to `value`, as a student would, and wait for
        the run that change asks for (see `widget_state` for what each kind takes).

        Like the browser, every later rerun (timers included) sends this value again, until
        the widget leaves the page.
        """
        state = widget_state(self.widget(key), value)
        self.widget_values[state.id] = state
        await self._rerun_and_wait(timeout)

    def metric(self, label: str) -> str | None:
        """The value a metric labelled `label` shows (e.g. "0.3845"), or None."""
        for element in self.elements.values():
            if element.kind == "metric" and element.label == label:
                return element.text
        return None

    async def wait_for_metric(self, label: str, timeout: float) -> str | None:
        """The metric labelled `label` once it is on the page (None after `timeout` s)."""
        try:
            await self._wait(lambda: self.metric(label) is not None or bool(self.closed_reason),
                             timeout)
        except asyncio.TimeoutError:
            return None
        return self.metric(label)

    def alerts(self) -> list[str]:
        """The texts of the alerts (st.error, st.warning, st.info, st.success) on the page."""
        return self.texts("alert")

    def button(self, label: str) -> Element:
        """The button labelled exactly `label` (icons are a separate field) on the page."""
        found = [e for e in self.elements.values() if e.kind == "button" and e.text == label]
        if not found:
            labels = sorted(e.text for e in self.elements.values() if e.kind == "button")
            raise StudentError(f"{self.name}: no button {label!r} on the page (buttons: {labels})")
        return found[0]

    async def click(self, label: str, timeout: float = RUN_TIMEOUT, wait: bool = True) -> None:
        """Click a button: a rerun with its trigger set; wait for that run unless `wait` is False.

        A click on a page whose fragment keeps running (Train) only waits for the full run
        the click asked for, not for the timers to stop.
        """
        element = self.button(label)
        if element.disabled:
            raise StudentError(f"{self.name}: button {label!r} is disabled")
        trigger = WidgetState(id=element.widget_id, trigger_value=True)
        if wait:
            await self._rerun_and_wait(timeout, widgets=[trigger])
        else:
            await self._send_rerun(widgets=[trigger])

    async def switch_page(self, url_path: str, timeout: float = RUN_TIMEOUT) -> None:
        """As a click on the sidebar link: same session, a rerun of that page's hash."""
        page_hash = self.pages.get(url_path.strip("/"))
        if page_hash is None:
            raise StudentError(f"{self.name}: no page {url_path!r} in the navigation "
                               f"({sorted(self.pages)})")
        self._cancel_timers()  # the frontend's onPageChange: cleanupAutoReruns()
        self.page_hash, self.page_name = page_hash, ""
        self.query_string = ""  # a sidebar link opens the page's own address
        await self._rerun_and_wait(timeout)

    async def wait_for_text(self, substring: str, timeout: float,
                            fail_on_exception: bool = True) -> float:
        """Wait (fragment timers keep firing) until an element on the page shows `substring`.

        Returns the seconds waited. TimeoutError names the last progress text on the page;
        an exception element raises StudentError at once unless `fail_on_exception` is False.
        """
        start = time.monotonic()
        seen_exceptions = len(self.exceptions)

        def ready() -> bool:
            return (self.find_text(substring) is not None or bool(self.closed_reason)
                    or (fail_on_exception and len(self.exceptions) > seen_exceptions))

        try:
            await self._wait(ready, timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"{self.name}: no {substring!r} after {timeout:.0f} s; "
                               f"last progress: {self.progress_text()!r}") from None
        if self.find_text(substring) is None:
            raise StudentError(f"{self.name}: waiting for {substring!r}: "
                               f"{self.closed_reason or self.exceptions[-1]}")
        return time.monotonic() - start

    # -- the page model ------------------------------------------------------------------

    def find_text(self, substring: str) -> Element | None:
        for element in self.elements.values():
            if substring in element.text:
                return element
        return None

    def texts(self, kind: str | None = None) -> list[str]:
        return [e.text for _, e in sorted(self.elements.items())
                if kind is None or e.kind == kind]

    def progress_text(self) -> str:
        progress = self.texts("progress")
        return progress[-1] if progress else ""

    def generated_text(self) -> str | None:
        """Generate's output text (the st.html with class mll-out), or None."""
        for element in self.elements.values():
            if element.kind == "html" and OUTPUT_CLASS in element.raw:
                div = OUTPUT_DIV.search(element.raw)
                return plain_text(div.group(1)) if div else element.text
        return None

    def number_input(self) -> float | None:
        """The value of the page's first number input (Generate: the seed)."""
        for _, element in sorted(self.elements.items()):
            if element.kind == "number_input":
                return element.value
        return None

    # -- requests ---------------------------------------------------------------------------

    def _client_state(self, widgets: list[WidgetState] = (), fragment_id: str = "",
                      is_auto_rerun: bool = False) -> ClientState:
        path = self.page_name or next((p for p, h in self.pages.items() if h == self.page_hash), "")
        state = ClientState(
            query_string=self.query_string,
            page_script_hash=self.page_hash,
            page_name="" if self.page_hash else self.page_name,
            fragment_id=fragment_id,
            is_auto_rerun=is_auto_rerun,
            cached_message_hashes=list(self.cache),
            context_info=ContextInfo(timezone="UTC", timezone_offset=0, locale="en-US",
                                     url=f"{self.base_url}/{path}", is_embedded=False,
                                     color_scheme="light"),
        )
        triggered = {w.id for w in widgets}
        state.widget_states.widgets.extend(
            [v for i, v in self.widget_values.items() if i not in triggered] + list(widgets))
        return state

    async def _send_rerun(self, widgets: list[WidgetState] = (), fragment_id: str = "",
                          is_auto_rerun: bool = False) -> None:
        if self.closed_reason:
            raise StudentError(f"{self.name}: connection closed: {self.closed_reason}")
        msg = BackMsg(rerun_script=self._client_state(widgets, fragment_id, is_auto_rerun))
        try:
            await self.ws.send(msg.SerializeToString())
        except ConnectionClosed as error:
            raise StudentError(f"{self.name}: connection closed: {error}") from error

    async def _rerun_and_wait(self, timeout: float, widgets: list[WidgetState] = ()) -> None:
        """Ask for a full run and wait until a full run started after it has finished.

        A run started after the request, not any finished run: a fragment run or a run
        cut short by ``st.rerun()`` (FINISHED_EARLY_FOR_RERUN) does not count.
        """
        started = self.counters.runs_started
        finished_full = self.counters.full_runs_finished
        await self._send_rerun(widgets)

        def done() -> bool:
            return bool(self.closed_reason) or (self.counters.runs_started > started
                                                and self.counters.full_runs_finished > finished_full
                                                and not self.script_running)

        try:
            await self._wait(done, timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"{self.name}: the run did not finish within {timeout:.0f} s "
                               f"(progress {self.progress_text()!r})") from None
        if self.closed_reason:
            raise StudentError(f"{self.name}: connection closed: {self.closed_reason}")
        if self.page_not_found:
            raise StudentError(f"{self.name}: page not found: {self.page_name or self.page_hash}")

    async def _wait(self, predicate, timeout: float) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(predicate), timeout)

    # -- fragment timers -------------------------------------------------------------------

    def _start_timer(self, fragment_id: str, interval: float) -> None:
        current = self.timers.get(fragment_id)
        if current is not None and current[0] == interval:
            return  # handleAutoRerun: same fragment, same interval: keep the running timer
        self._stop_timer(fragment_id)
        task = asyncio.create_task(self._tick(fragment_id, interval),
                                   name=f"{self.name}-timer-{fragment_id[:8]}")
        self.timers[fragment_id] = (interval, task)

    async def _tick(self, fragment_id: str, interval: float) -> None:
        """setInterval: every `interval` s from now, fixed rate, answered or not."""
        next_at = time.monotonic() + interval
        while not self.closed_reason:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at = max(next_at + interval, time.monotonic())  # late ticks do not pile up
            self.counters.fragment_requests += 1
            try:
                await self._send_rerun(fragment_id=fragment_id, is_auto_rerun=True)
            except StudentError:
                return

    def _stop_timer(self, fragment_id: str) -> None:
        entry = self.timers.pop(fragment_id, None)
        if entry is not None:
            entry[1].cancel()

    def _cancel_timers(self) -> None:
        for fragment_id in list(self.timers):
            self._stop_timer(fragment_id)

    # -- incoming messages -----------------------------------------------------------------

    async def _read(self) -> None:
        try:
            async for data in self.ws:
                msg = ForwardMsg()
                msg.ParseFromString(data)
                self.counters.messages += 1
                self.counters.bytes_in += len(data)
                self._handle(msg)
                async with self.changed:
                    self.changed.notify_all()
            self.closed_reason = "closed by the server"
        except ConnectionClosed as error:
            self.closed_reason = f"closed: {error}"
        except Exception as error:  # noqa: BLE001 - a bad message ends this student, visibly
            self.closed_reason = f"reader failed: {type(error).__name__}: {error}"
        finally:
            if not self._closing:
                self.dropped_at = time.monotonic()
            self._cancel_timers()
            async with self.changed:
                self.changed.notify_all()

    def _handle(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if kind == "ref_hash":  # a big element we already have: the server sent its hash
            cached = self.cache.get(msg.ref_hash)
            if cached is None:
                raise StudentError(f"cache miss for {msg.ref_hash}")
            cached[1] = self.cache_runs
            self.counters.cache_hits += 1
            full = ForwardMsg()
            full.CopyFrom(cached[0])
            full.metadata.CopyFrom(msg.metadata)
            msg, kind = full, full.WhichOneof("type")
        elif msg.metadata.cacheable and msg.hash:
            if msg.hash in self.cache:
                self.cache[msg.hash][1] = self.cache_runs
            else:
                self.cache[msg.hash] = [msg, self.cache_runs, msg.delta.fragment_id or None]

        if kind == "new_session":
            self._on_new_session(msg)
        elif kind == "delta":
            self._on_delta(msg)
        elif kind == "script_finished":
            self._on_script_finished(msg)
        elif kind == "session_status_changed":
            self.script_running = msg.session_status_changed.script_is_running
        elif kind == "navigation":
            self.pages = {p.url_pathname: p.page_script_hash for p in msg.navigation.app_pages}
            if msg.navigation.page_script_hash:
                self.page_hash = msg.navigation.page_script_hash
        elif kind == "auto_rerun":
            if msg.auto_rerun.fragment_id:
                self._start_timer(msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            for fragment_id in msg.stop_auto_rerun.fragment_ids:
                self._stop_timer(fragment_id)
        elif kind == "page_not_found":
            self.page_not_found = True
        elif kind == "page_info_changed":
            self.query_string = msg.page_info_changed.query_string
        elif kind == "session_event":
            if msg.session_event.WhichOneof("type") == "script_compilation_exception":
                error = msg.session_event.script_compilation_exception
                self.exceptions.append(f"compile error: {error.type}: {error.message}")

    def _on_new_session(self, msg: ForwardMsg) -> None:
        self.counters.runs_started += 1
        self.run_id = msg.metadata.run.script_run_id
        self.run_fragment_ids = list(msg.metadata.run.fragment_ids)
        session = msg.new_session
        if not self.run_fragment_ids:
            self._cancel_timers()  # handleNewSession: a full run clears every fragment timer
            self.max_cached_age = session.config.max_cached_message_age or self.max_cached_age
            if session.page_script_hash and session.page_script_hash != self.page_hash:
                self.elements.clear()  # another page: clearAppState
            if session.page_script_hash:
                self.page_hash = session.page_script_hash
                self.page_name = ""
            self.page_not_found = False

    def _on_delta(self, msg: ForwardMsg) -> None:
        if msg.delta.WhichOneof("type") != "new_element":
            return  # add_block: containers; their elements come as their own deltas
        path = tuple(msg.metadata.delta_path)
        element = element_from_delta(msg, self.run_id)
        for other in [p for p in self.elements if p[:len(path)] == path and p != path]:
            del self.elements[other]  # an element replaces what was a block there
        self.elements[path] = element
        if element.text:
            self.seen_texts.add(element.text)
            if WAITING_MARKER in element.text:
                self.saw_waiting = True
        if element.kind == "exception":
            self.exceptions.append(element.text)

    def _on_script_finished(self, msg: ForwardMsg) -> None:
        status = msg.script_finished
        run = msg.metadata.run
        if status not in RUN_ENDS:
            return  # FINISHED_EARLY_FOR_RERUN: the next run redraws; nothing is cleared
        self.counters.runs_finished += 1
        fragment_ids = list(run.fragment_ids)
        if not fragment_ids:
            self.counters.full_runs_finished += 1
        if status != FINISHED.FINISHED_WITH_COMPILE_ERROR and run.script_run_id:
            if fragment_ids or run.script_run_id == self.run_id:  # clearStaleNodes
                self.elements = {
                    path: e for path, e in self.elements.items()
                    if e.run_id == run.script_run_id
                    or (fragment_ids and e.fragment_id not in fragment_ids)}
            if not fragment_ids and run.script_run_id == self.run_id:
                # WidgetStateManager.removeInactive: values of widgets no longer drawn go
                on_page = {e.widget_id for e in self.elements.values() if e.widget_id}
                self.widget_values = {i: v for i, v in self.widget_values.items()
                                      if i in on_page}
        # incrementMessageCacheRunCount: age the cache (only the run's fragments' entries).
        self.cache_runs += 1
        for digest, (_, seen, fragment_id) in list(self.cache.items()):
            if fragment_ids and (not fragment_id or fragment_id not in fragment_ids):
                continue
            if self.cache_runs - seen > self.max_cached_age:
                del self.cache[digest]


# ---------------------------------------------------------------------------
# The class flow (same steps as bench/load_test.py, without browsers)
# ---------------------------------------------------------------------------


@dataclass
class Result:
    index: int
    status: str = "not started"  # "completed" or "failed"
    reason: str = ""
    open_seconds: float | None = None
    train_seconds: float | None = None  # Train click -> done marker
    waited_for_slot: bool = False
    exceptions: int = 0
    generated: str = ""
    seed_before: float | None = None
    seed_after: float | None = None
    final_loss: str | None = None  # the "Final training loss" metric as shown, e.g. "0.3845"
    note: str = ""  # something odd that did not make the flow fail
    fragment_requests: int = 0
    messages: int = 0
    megabytes_in: float = 0.0
    cache_hits: int = 0

    def fail(self, reason: str) -> None:
        if self.status != "failed":
            self.status, self.reason = "failed", reason


class Barrier:
    """Everyone clicks Train together once all students have the page open (or gave up)."""

    def __init__(self, parties: int, timeout: float, on_release=None):
        self.parties, self.timeout, self.arrived = parties, timeout, 0
        self.on_release = on_release  # called once, when the last one arrives
        self.event = asyncio.Event()
        self.released_at: float | None = None

    def arrive(self) -> None:
        self.arrived += 1
        if self.arrived >= self.parties and not self.event.is_set():
            self.released_at = time.monotonic()
            if self.on_release is not None:
                self.on_release()
            self.event.set()

    async def wait(self) -> bool:
        try:
            await asyncio.wait_for(self.event.wait(), self.timeout)
            return True
        except asyncio.TimeoutError:
            return False


async def open_train_together(student: WsStudent, result: Result, ready: Barrier,
                              opening: asyncio.Semaphore, when: str, **open_kw) -> bool:
    """Open Train (at most `opening` students at a time), then wait at `ready` for the whole
    class: True when this student may go. A failure is recorded in `result`, and the student
    arrives at `ready` either way, so the others never wait for it."""
    opened = False
    try:
        async with opening:
            result.open_seconds = await student.open("train", **open_kw)
        student.button("Train")
        opened = not student.exceptions
        if not opened:
            result.fail(f"exception on Train {when}: {student.exceptions[0]}")
    except (StudentError, TimeoutError) as error:
        result.fail(f"Train page did not open: {error}")
    finally:
        ready.arrive()
    if opened and not await ready.wait():
        result.fail("the other sessions were not ready in time")
        return False
    return opened


def record_counts(result: Result, student: WsStudent) -> None:
    """What the student's websocket saw, into its result (at the end, however it ended)."""
    result.waited_for_slot = student.saw_waiting
    result.exceptions = len(student.exceptions)
    result.fragment_requests = student.counters.fragment_requests
    result.messages = student.counters.messages
    result.megabytes_in = student.counters.bytes_in / 2**20
    result.cache_hits = student.counters.cache_hits


async def student_flow(base_url: str, result: Result, ready: Barrier,
                       opening: asyncio.Semaphore, cookies: dict | None = None) -> None:
    """Open Train, (all together) click Train, wait for the done marker, Generate once.
    With `cookies` (behind nginx, e.g. a chosen ``minillm_route``) the page is loaded over
    HTTP first, as a browser does, and the websocket carries them."""
    student = WsStudent(base_url, name=f"student {result.index}", cookies=cookies)
    try:
        if not await open_train_together(student, result, ready, opening, "before training",
                                         load_page=cookies is not None):
            return
        start = time.monotonic()
        await student.click("Train", wait=False)
        await student.wait_for_text(DONE_MARKER, TRAIN_TIMEOUT)
        result.train_seconds = time.monotonic() - start
        await student._wait(lambda: not student.script_running or bool(student.closed_reason),
                            RUN_TIMEOUT)  # the done page's run has drawn everything
        result.final_loss = await student.wait_for_metric(FINAL_LOSS, METRIC_TIMEOUT)
        if result.final_loss is None:
            result.note = (f"no {FINAL_LOSS!r} metric {METRIC_TIMEOUT:.0f} s after the done "
                           f"marker; the page: {student.texts()[:12]}")

        await student.switch_page("generate")
        if student.find_text(NO_MODEL_MARKER):
            raise StudentError("Generate says there is no trained model (session lost it)")
        before = student.generated_text()
        result.seed_before = student.number_input()
        if before is None:
            raise StudentError(f"no generated text on Generate: {student.texts()[:8]}")
        await student.click("Another sample")
        result.generated = student.generated_text() or ""
        result.seed_after = student.number_input()
        if not result.generated:
            raise StudentError("no generated text after Another sample")
        if result.seed_after != (result.seed_before or 0) + 1:
            raise StudentError(f"seed {result.seed_before} -> {result.seed_after}, expected +1")
        if student.exceptions:
            raise StudentError(f"{len(student.exceptions)} exception(s): {student.exceptions[0]}")
        result.status = "completed"
    except (StudentError, TimeoutError, asyncio.TimeoutError) as error:
        result.fail(str(error) or type(error).__name__)
    except Exception as error:  # noqa: BLE001 - the result says what broke
        result.fail(f"harness error: {type(error).__name__}: {error}")
    finally:
        record_counts(result, student)
        await student.close()


# ---------------------------------------------------------------------------
# A class on the board: join with a nickname, train, post; a replica that dies
# ---------------------------------------------------------------------------

JOIN_BUTTON = "Join the class"  # ui/class_mode.py: join_form
NICK_KEY = "class_join_sidebar_nick"  # ui/class_mode.py: join_form("class_join_sidebar")
JOINED_MARKER = "· you are **"  # ui/class_mode.py: sidebar, "Class **CODE** · you are **NICK**"
NICK_TAKEN = "already uses the nickname"  # minillm/store/board.py: join
POST_PREFIX = "Post this run to the board of"  # ui/class_mode.py: post_button
POSTED = re.compile(r"Posted to the board of (\S+) as run #(\d+)\.")  # ui/class_mode.py: _post
CLASS_TRAIN_TIMEOUT = 900.0  # s from the Train click to the done marker (90 on 2 cores)


@dataclass
class ClassResult(Result):
    nickname: str = ""  # the nickname it joined with (last: a reload may need another one)
    upstream: str = ""  # the server (host:port) its page and websocket went to, through nginx
    run_ids: list = field(default_factory=list)  # run ids the page said were posted
    go_at: float | None = None  # monotonic: its (first) Train click
    posted_at: float | None = None  # monotonic: the "Posted ..." message
    dropped: bool = False  # its websocket was closed by the server's side
    dropped_while: str = ""  # what it was doing then: "training", "posting", "done", ...
    reloaded: bool = False  # it reloaded and did it again
    upstream_after: str = ""  # the server it landed on after the reload
    attempts: int = 0  # trainings started (2 after a reload mid-run)
    sidebar_reruns: int = 0  # page runs asked again for a missing class box (join_class)

    @property
    def posted(self) -> bool:
        return bool(self.run_ids)

    @property
    def settled(self) -> bool:
        """Posted, or failed: nothing more will happen until the lesson ends."""
        return self.posted or self.status == "failed"


async def join_class(student: WsStudent, nickname: str, tries: int = 3) -> str:
    """Type `nickname` into the sidebar's form and press Join; the nickname the board took.

    A nickname already on the board (this student's own, from a session that died with its
    replica: the new replica gives the browser a new seat) gets a number: "Ada 2", "Ada 3".
    """
    for attempt in range(1, tries + 1):
        name = nickname if attempt == 1 else f"{nickname} {attempt}"
        if attempt == 1 and not any(e.key == NICK_KEY for e in student.elements.values()):
            # Seen on a replica's first sessions: a first run drawn without the sidebar's
            # class box. A student would press R: run the page once more.
            student.reruns_for_sidebar += 1
            await student._rerun_and_wait(RUN_TIMEOUT)
        try:
            box = student.widget(NICK_KEY)
        except StudentError:
            raise StudentError(f"{student.name}: no nickname box on the page; it says: "
                               f"{student.alerts() or student.texts()[-6:]}") from None
        state = widget_state(box, name)  # in a form: sent with the submit
        student.widget_values[state.id] = state
        await student.click(JOIN_BUTTON)
        alerts = student.alerts()
        if any(JOINED_MARKER in text for text in student.texts("markdown")):
            return name
        if not any(NICK_TAKEN in a for a in alerts):
            raise StudentError(f"{student.name}: joining as {name!r}: "
                               f"{'; '.join(alerts) or 'no message'}")
    raise StudentError(f"{student.name}: every nickname tried was taken")


def post_button_label(student: WsStudent) -> str | None:
    return next((e.text for e in student.elements.values()
                 if e.kind == "button" and e.text.startswith(POST_PREFIX)), None)


async def train_and_post(student: WsStudent, result: ClassResult, code: str,
                         train_timeout: float) -> None:
    """Click Train, wait for the done marker, press "Post this run ...", read its run id."""
    result.attempts += 1
    await student.click("Train", wait=False)
    result.go_at = result.go_at or time.monotonic()
    await student.wait_for_text(DONE_MARKER, train_timeout)
    result.train_seconds = time.monotonic() - result.go_at  # from its first click
    await student._wait(lambda: not student.script_running or bool(student.closed_reason),
                        RUN_TIMEOUT)
    result.final_loss = await student.wait_for_metric(FINAL_LOSS, METRIC_TIMEOUT)
    await student._wait(lambda: post_button_label(student) is not None
                        or bool(student.closed_reason), RUN_TIMEOUT)
    label = post_button_label(student)
    if label is None:
        raise StudentError(f"{student.name}: no post button after training "
                           f"({student.closed_reason or student.alerts()})")
    await student.click(label)
    posted = next((m for m in map(POSTED.search, student.alerts()) if m), None)
    if posted is None or posted.group(1) != code:
        raise StudentError(f"{student.name}: posting said {student.alerts() or 'nothing'}")
    result.run_ids.append(int(posted.group(2)))
    result.posted_at = time.monotonic()


def doing(result: ClassResult) -> str:
    if result.posted:
        return "done (posted)"
    if result.train_seconds is not None:
        return "posting"
    return "training" if result.go_at is not None else "opening"


async def class_flow(base_url: str, result: ClassResult, ready: Barrier,
                     opening: asyncio.Semaphore, code: str, lesson_over: asyncio.Event,
                     cookies: dict | None = None, train_timeout: float = CLASS_TRAIN_TIMEOUT,
                     reload: bool = True) -> None:
    """A student of class `code` behind nginx: load /train?class=CODE (nginx draws a replica
    and sets its cookie; the websocket carries it), join with `result.nickname`, then (all
    together) train the default model and post it; stay on the page until `lesson_over`.

    When the websocket drops (its replica died) the student is "told to reload", as the
    browser's "Connection error" says: it loads the page again with the same cookies (nginx
    sends it to the dead replica's backup), joins again and, if its run was not posted yet,
    trains and posts again. A run already posted is not redone (it is on the board).
    """
    cookies = {} if cookies is None else cookies
    student = WsStudent(base_url, name=f"student {result.index}", cookies=cookies)
    nickname, arrived = result.nickname, False
    try:
        try:
            async with opening:
                result.open_seconds = await student.open("train", query=f"class={code}",
                                                         load_page=True)
                if student.page_upstream and student.ws_upstream != student.page_upstream:
                    raise StudentError(f"not sticky: page from {student.page_upstream}, "
                                       f"websocket to {student.ws_upstream or 'unknown'}")
                result.upstream = student.ws_upstream
                student.button("Train")
                result.nickname = await join_class(student, nickname)
        except (StudentError, TimeoutError, asyncio.TimeoutError) as error:
            result.fail(f"did not join: {error}")
        finally:
            arrived = True
            ready.arrive()
        if result.status == "failed":
            return
        if not await ready.wait():
            result.fail("the other sessions were not ready in time")
            return
        try:
            await train_and_post(student, result, code, train_timeout)
            await stay_until(student, lesson_over)
        except (StudentError, TimeoutError, asyncio.TimeoutError):
            if not student.dropped:
                raise
        if student.dropped:
            result.dropped, result.dropped_while = True, doing(result)
            if result.posted or not reload:
                if result.posted and not student.exceptions:
                    result.status = "completed"
                else:
                    result.fail(f"websocket dropped while {result.dropped_while}")
                return
            # "Connection error: reload": a new page load, same cookies, then again.
            await student.close()
            absorb(result, student)
            result.reloaded = True
            student = WsStudent(base_url, name=f"student {result.index} (reloaded)",
                                cookies=cookies)
            await student.open("train", query=f"class={code}", load_page=True)
            if student.page_upstream and student.ws_upstream != student.page_upstream:
                raise StudentError(f"not sticky after the reload: page from "
                                   f"{student.page_upstream}, websocket to {student.ws_upstream}")
            result.upstream_after = student.ws_upstream
            result.nickname = await join_class(student, nickname)
            await train_and_post(student, result, code, train_timeout)
        if student.exceptions:
            raise StudentError(f"{len(student.exceptions)} exception(s): {student.exceptions[0]}")
        result.status = "completed"
    except (StudentError, TimeoutError, asyncio.TimeoutError) as error:
        result.fail(str(error) or type(error).__name__)
    except Exception as error:  # noqa: BLE001 - the result says what broke
        result.fail(f"harness error: {type(error).__name__}: {error}")
    finally:
        if not arrived:
            ready.arrive()
        await student.close()
        absorb(result, student)


async def stay_until(student: WsStudent, lesson_over: asyncio.Event) -> None:
    """Keep the page open (as a tab does) until the lesson is over or the connection drops."""
    lesson = asyncio.ensure_future(lesson_over.wait())
    try:
        await asyncio.wait([lesson, student.reader], return_when=asyncio.FIRST_COMPLETED)
    finally:
        lesson.cancel()


def absorb(result: Result, student: WsStudent) -> None:
    """Add what `student` (one page load) saw to `result` (a student's whole lesson)."""
    result.waited_for_slot = result.waited_for_slot or student.saw_waiting
    result.exceptions += len(student.exceptions)
    result.fragment_requests += student.counters.fragment_requests
    result.messages += student.counters.messages
    result.megabytes_in += student.counters.bytes_in / 2**20
    result.cache_hits += student.counters.cache_hits
    if isinstance(result, ClassResult):
        result.sidebar_reruns += student.reruns_for_sidebar
    student.exceptions, student.counters, student.reruns_for_sidebar = [], Counters(), 0


# ---------------------------------------------------------------------------
# The abuser: one student asks for the biggest run the Train page offers
# ---------------------------------------------------------------------------

REFUSED_MARKER = "This run is too big for this server"  # minillm/budget.py: budget_problem
PASTE = "Paste your own sentences"  # ui/train_widgets.py: PASTE
LOSS_LAST = "the last position (the notebook)"  # pages/train.py: LOSS_ON
LOSS_EVERY = "every position (GPT style)"
ABUSER_WAIT = 180.0  # s from the abuser's Train click until the bench stops waiting for it
OUTCOME_CHARS = 100  # a refusal is quoted this far
DONE_TEXT = re.compile(r"Training done: ([\d,]+) epochs in ([\d.]+) s")
PROGRESS_TEXT = re.compile(r"Epoch ([\d,]+) of ([\d,]+)")
# minillm/budget.py: suggestions(), e.g. "To fit, lower d_model to 32, or lower the block size
# to 4." or "To fit, change several settings: score the last position only (as the notebook
# does), d_model 8, the block size 7."
ADVICE = re.compile(r"To fit, (?:change several settings: )?(.*?)\.(?: |$)")
ADVICE_NUMBER = re.compile(r"^(?:lower )?(d_model|the block size|the epochs)(?: to)? ([\d,]+)$")
ADVICE_KEYS = {"d_model": "train_d_model", "the block size": "train_block",
               "the epochs": "train_epochs"}


def abuser_corpus(seed: int = 7, max_chars: int = 50_000, words: int = 5_000,
                  max_lines: int = 2_000) -> str:
    """A seeded text at the Train page's limits for pasted text (minillm/corpus.py: at most
    50,000 characters, 5,000 different words and 2,000 lines): made-up words built from
    syllables, each used once in a shuffled order, then more drawn by Zipf's law until the
    characters run out; 6 to 14 words a line."""
    rng = random.Random(seed)
    onsets = "b c d f g h j k l m n p r s t v w z br cl dr fl gr pl st tr sh ch".split()
    vowels = "a e i o u ai ea oo ou".split()
    codas = ["", "", "n", "r", "s", "t", "l", "m", "nd", "st"]
    vocabulary, seen = [], set()
    while len(vocabulary) < words:
        word = "".join(rng.choice(onsets) + rng.choice(vowels)
                       for _ in range(rng.choice((1, 2, 2, 3)))) + rng.choice(codas)
        if word not in seen:
            seen.add(word)
            vocabulary.append(word)
    first_uses = rng.sample(vocabulary, len(vocabulary))
    zipf = [1 / rank for rank in range(1, words + 1)]
    lines, line, length = [], [], -1  # -1: no separator before the first word
    while len(lines) < max_lines:
        word = first_uses.pop() if first_uses else rng.choices(vocabulary, zipf)[0]
        if length + 1 + len(word) > max_chars:
            break
        line.append(word)
        length += 1 + len(word)
        if len(line) >= rng.randint(6, 14):
            lines.append(" ".join(line))
            line = []
    if line and len(lines) < max_lines:
        lines.append(" ".join(line))
    return "\n".join(lines)


def largest_run(text: str) -> list[tuple[str, object]]:
    """The widget steps to the largest run the Train page offers, in a student's order:
    pasted `text`, block 16, d_model 128, 16 heads, 2,000 epochs, loss on every position
    with the causal mask. The tokenizer stays the default (words): a student clicking the
    chosen radio button sends nothing."""
    return [("train_corpus", PASTE), ("train_text", text), ("train_block", 16),
            ("train_d_model", "128"), ("train_heads", "16"), ("train_epochs", 2000),
            ("train_loss_on", LOSS_EVERY), ("train_causal", True)]


def advice_steps(refusal: str) -> list[tuple[str, object]]:
    """The widget steps that follow a refusal's own advice ("To fit, ..."), [] without one.

    Several settings changed in turn are all taken; of alternatives ("lower d_model to 32,
    or lower the block size to 4") the first. A new d_model is followed by the heads step
    (``("train_heads", None)``: the most heads the new width still allows, up to 16, as the
    budget's own suggestion keeps them).
    """
    match = ADVICE.search(refusal)
    if not match:
        return []
    several = match.group(0).startswith("To fit, change several settings:")
    advice = match.group(1)
    parts = advice.split(", ") if several else [advice.split(", or ")[0]]
    steps: list[tuple[str, object]] = []
    for part in (p for p in parts if p):
        if part.startswith("score the last position only"):
            steps += [("train_loss_on", LOSS_LAST), ("train_causal", False)]
            continue
        number = ADVICE_NUMBER.match(part)
        if not number:
            continue  # a move this client does not know: left out, the page says the rest
        key, value = ADVICE_KEYS[number.group(1)], int(number.group(2).replace(",", ""))
        steps.append((key, str(value) if key == "train_d_model" else value))
        if key == "train_d_model":
            steps.append(("train_heads", None))
    return steps


def done_numbers(text: str) -> tuple[int, float] | None:
    """(epochs, seconds) from the done marker "Training done: 300 epochs in 1.2 s.", or None."""
    match = DONE_TEXT.search(text)
    return (int(match.group(1).replace(",", "")), float(match.group(2))) if match else None


def progress_numbers(text: str) -> tuple[int, int] | None:
    """(epoch, epochs) from the progress bar "Epoch 120 of 2000 · loss 5.1234", or None."""
    match = PROGRESS_TEXT.search(text)
    return (int(match.group(1).replace(",", "")),
            int(match.group(2).replace(",", ""))) if match else None


def shorten(text: str, limit: int = OUTCOME_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3].rstrip() + "..."


@dataclass
class AbuserResult(Result):
    follow_advice: bool = False  # after a refusal: do what it says and press Train
    outcome: str = ""  # what its page showed, in one line
    refusal: str = ""  # the full refusal, when there was one
    advice_taken: str = ""  # the steps taken after it
    steps: list = field(default_factory=list)  # every (widget key, value) it set, in order
    setup_seconds: float | None = None  # from the go to the last setting drawn
    epochs_done: int | None = None
    page_facts: str = ""  # what the page says about the data ("5,707 windows ... ids")


async def set_steps(student: WsStudent, steps, done: list) -> None:
    """Set each (key, value) in turn, waiting for each run; `done` gets what was set."""
    for key, value in steps:
        if key == "train_heads" and value is None:  # the most heads the width allows (<= 16)
            value = max(student.widget(key).options, key=lambda o: (int(o) <= 16, int(o)))
        await student.set_widget(key, value)
        done.append((key, value))


def refusal_on(student: WsStudent) -> str:
    return next((t for t in student.alerts() if t.startswith(REFUSED_MARKER)), "")


async def abuser_flow(base_url: str, result: AbuserResult, ready: Barrier,
                      opening: asyncio.Semaphore, text: str,
                      wait_seconds: float = ABUSER_WAIT) -> None:
    """Open Train with the class; at the go set the largest run through the widgets and press
    Train. A refused run ends here (``result.outcome = "refused: ..."``), unless
    `result.follow_advice`: then the refusal's advice is followed and Train pressed. A run is
    waited for at most `wait_seconds` from the click; then this client leaves (its timers
    stop, so its run stops training: only a browser tab's timers drive a run)."""
    student = WsStudent(base_url, name=f"abuser {result.index}")
    try:
        if not await open_train_together(student, result, ready, opening, "before anything"):
            return
        start = time.monotonic()
        await set_steps(student, largest_run(text), result.steps)
        result.refusal = refusal_on(student)
        if result.refusal and result.follow_advice:
            steps, before = advice_steps(result.refusal), len(result.steps)
            await set_steps(student, steps, result.steps)
            result.advice_taken = ", ".join(f"{k}={v}" for k, v in result.steps[before:]) \
                or "none found"
        result.setup_seconds = time.monotonic() - start
        result.page_facts = next((t for t in student.texts("markdown")
                                  if "windows (context" in t), "")
        refused_now = refusal_on(student)
        train = student.button("Train")
        if refused_now or train.disabled:
            again = " again, after its advice" if result.follow_advice and result.refusal else ""
            result.outcome = (f"refused{again}: {shorten(refused_now)}" if refused_now else
                              "Train disabled, no refusal shown")
            if refused_now and not train.disabled:
                result.outcome += " (but Train is enabled)"
            result.status = "completed"
            return
        click = time.monotonic()
        await student.click("Train", wait=False)
        try:
            await student.wait_for_text(DONE_MARKER, wait_seconds)
            result.train_seconds = time.monotonic() - click
            await student._wait(lambda: not student.script_running or bool(student.closed_reason),
                                RUN_TIMEOUT)
            done = student.find_text(DONE_MARKER)
            numbers = done_numbers(done.text) if done else None
            result.epochs_done = numbers[0] if numbers else None
            result.final_loss = await student.wait_for_metric(FINAL_LOSS, METRIC_TIMEOUT)
            result.outcome = (f"trained {numbers[0]:,} epochs in {numbers[1]:.1f} s "
                              f"({result.train_seconds:.1f} s from its click), final loss "
                              f"{result.final_loss}" if numbers else shorten(done.text))
        except TimeoutError:
            progress = student.progress_text()
            numbers = progress_numbers(progress)
            result.epochs_done = numbers[0] if numbers else None
            result.outcome = (f"still training {wait_seconds:.0f} s after its click, left: "
                              f"{progress or 'no progress shown'}")
        if student.exceptions:
            raise StudentError(f"{len(student.exceptions)} exception(s): {student.exceptions[0]}")
        result.status = "completed"
    except (StudentError, TimeoutError, asyncio.TimeoutError) as error:
        result.fail(str(error) or type(error).__name__)
    except Exception as error:  # noqa: BLE001 - the result says what broke
        result.fail(f"harness error: {type(error).__name__}: {error}")
    finally:
        if result.status == "failed" and not result.outcome:
            result.outcome = f"failed: {shorten(result.reason)}"
        record_counts(result, student)
        await student.close()


# ---------------------------------------------------------------------------
# CPU bookkeeping (/proc; psutil is not a dependency)
# ---------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def listening_pid(port: int) -> int | None:
    """The process that listens on 127.0.0.1:`port` (the server), from /proc/net/tcp."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                for line in list(f)[1:]:
                    cols = line.split()  # sl local rem st ... inode
                    if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(cols[9])
        except OSError:
            pass
    targets = {f"socket:[{inode}]" for inode in inodes}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{entry}/fd"):
                if os.readlink(f"/proc/{entry}/fd/{fd}") in targets:
                    return int(entry)
        except OSError:
            continue
    return None


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def fmt_s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


async def run_class(base_url: str, sessions: int, opening_at_once: int,
                    server_pid: int | None) -> int:
    results = [Result(index=i + 1) for i in range(sessions)]
    ready = Barrier(sessions, timeout=600.0)
    opening = asyncio.Semaphore(opening_at_once)
    cpu_start: dict = {}

    async def on_go() -> None:
        await ready.event.wait()
        cpu_start.update(driver=time.process_time(),
                         server=cpu_seconds(server_pid) if server_pid else None)
        print(f"all {sessions} sessions have the Train page open: Train ...", flush=True)

    started = time.monotonic()
    tasks = [asyncio.create_task(student_flow(base_url, r, ready, opening)) for r in results]
    go = asyncio.create_task(on_go())
    done, pending = await asyncio.wait(tasks, timeout=600.0 + TRAIN_TIMEOUT + 4 * RUN_TIMEOUT)
    for task in [*pending, go]:
        task.cancel()
    await asyncio.gather(*tasks, go, return_exceptions=True)
    for r in results:
        if r.status not in ("completed", "failed"):
            r.fail("still running at the deadline")
    end = time.monotonic()
    driver_cpu = time.process_time() - cpu_start.get("driver", 0.0)
    server_cpu = (cpu_seconds(server_pid) - cpu_start["server"]
                  if server_pid and cpu_start.get("server") is not None else None)

    completed = [r for r in results if r.status == "completed"]
    times = [r.train_seconds for r in results if r.train_seconds is not None]
    since_go = end - (ready.released_at or started)
    print()
    print(f"=== ws_driver: {sessions} session(s) on {base_url} ===")
    for r in results:
        waited = "yes" if r.waited_for_slot else "no "
        line = (f"  session {r.index:2d}: {r.status:9s} train {fmt_s(r.train_seconds):>8s}"
                f"  open {fmt_s(r.open_seconds):>8s}  waited-for-slot {waited}"
                f"  exceptions {r.exceptions}  timer reruns {r.fragment_requests:3d}"
                f"  msgs {r.messages} ({r.megabytes_in:.1f} MB, {r.cache_hits} cache hits)")
        print(line)
        if r.status == "completed":
            print(f"              seed {r.seed_before:.0f} -> {r.seed_after:.0f}: {r.generated!r}")
        else:
            print(f"              failed: {r.reason}")
    print(f"completed {len(completed)}/{sessions}; exceptions {sum(r.exceptions for r in results)};"
          f" saw '{WAITING_MARKER}': {sum(r.waited_for_slot for r in results)}")
    print(f"click -> '{DONE_MARKER}' ({len(times)} sessions): p50 {fmt_s(percentile(times, 50))},"
          f" p95 {fmt_s(percentile(times, 95))}, min {fmt_s(min(times, default=None))},"
          f" max {fmt_s(max(times, default=None))}")
    server_text = f"{server_cpu:.1f} s" if server_cpu is not None else "n/a (no server pid)"
    print(f"CPU from the Train clicks to the end ({since_go:.1f} s wall): server {server_text}, "
          f"this driver {driver_cpu:.2f} s")
    return 0 if len(completed) == sessions else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8599", help="the running app")
    parser.add_argument("--sessions", type=int, default=1, help="concurrent students (1)")
    parser.add_argument("--opening", type=int, default=4,
                        help="students opening the Train page at the same moment (4, as "
                             "load_test.py; untimed)")
    parser.add_argument("--server-pid", type=int, default=0,
                        help="the server's pid for its CPU time (default: whoever listens "
                             "on the url's port)")
    args = parser.parse_args()
    sessions = max(1, min(args.sessions, 200))
    port = urlsplit(args.url).port or 80
    server_pid = args.server_pid or listening_pid(port)
    print(f"server {args.url} (pid {server_pid or 'unknown'}); {sessions} session(s)", flush=True)
    return asyncio.run(run_class(args.url, sessions, max(1, args.opening), server_pid))


if __name__ == "__main__":
    sys.exit(main())
