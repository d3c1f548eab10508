"""Class mode: the class a session is in, its nickname, posting a run, and the teacher key.

- **The store** (`minillm.store`) is opened once per server process (`store()`, a
  ``st.cache_resource`` keyed by the database's address: ``MINILLM_DATABASE_URL`` or the
  SQLite file). A database that does not answer is a sentence on the page, never a crash.
- **Who is who.** The board knows a session by its seat token (`ui.seats`: a random cookie
  per browser, ``st.session_state["seat_token"]``), passed as ``session_id``; the store keeps
  only its hash. Two tabs of one browser are one student.
- **The class** comes from the link (``?class=7b-tokens``, read by `class_from_link` in
  app.py on every run) or from the code typed on the Class board page; it is checked
  (`minillm.store.codes`), looked up, kept in session state and put back in the address bar
  on every page, so a reload stays in the class. Unknown codes count against the session
  (`CODE_TRIES` in `CODE_WINDOW`): codes the app makes are hard to guess, and guessing
  them from one browser is slow.
- **Nicknames** are joined with `join_form`; the store checks them (length, no control
  characters, unique in the class). Every nickname and sample is shown as text: in tables,
  or through `ui.plain_text.plain` inside Markdown.
- **Posting** (`post_button`, on the Train page's finished run): settings without the corpus,
  the numbers, one sample (`minillm.board_report.run_record`) and the model file
  (`minillm.checkpoint.save_checkpoint`), in one click and one transaction. The store's limits
  (posts per minute per session, runs per student and class, sizes) answer in sentences,
  shown as they are.
- **The teacher key** comes from ``MINILLM_TEACHER_KEY`` or Streamlit secrets (``teacher_key``
  or ``MINILLM_TEACHER_KEY`` in ``.streamlit/secrets.toml``; no secrets file is fine). Without
  one, there is no teacher panel at all. It is typed once per session into a password field,
  compared in constant time (`key_matches`), never kept (the field is emptied at once), never
  written to the address bar or a log. Wrong keys count against the session (`KEY_TRIES` in
  `KEY_WINDOW`). `teacher_board()` makes the store's `TeacherBoard` only for a session that
  passed the check; student code paths never build one.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import time

import streamlit as st

from minillm.store import BoardError, ClassBoard, default_url, open_store
from minillm.store.codes import code_problem, normalize_code
from ui.plain_text import plain

log = logging.getLogger(__name__)

CLASS_PARAM = "class"  # ?class=7b-tokens
CLASS = "class_code"  # session state: the class this session is in
MEMBER = "class_member"  # session state: (code, nickname or None) as the store last said
TEACHER = "teacher_ok"  # session state: a fingerprint of the key that was typed right
TEACHER_KEY_ENV = "MINILLM_TEACHER_KEY"
TEACHER_SECRET_NAMES = ("teacher_key", TEACHER_KEY_ENV)
KEY_TRIES, KEY_WINDOW = 5, 600.0  # wrong teacher keys per session in ten minutes
WRONG_KEY_DELAY = 0.5  # seconds a wrong key costs
CODE_TRIES, CODE_WINDOW = 10, 600.0  # unknown class codes per session in ten minutes
BOARD_PAGE = "pages/class_board.py"
BOARD_URL_PATH = "class_board"
FALLBACK_SESSION = "_board_session"  # a page run without app.py (tests) has no seat token


# -- the store -------------------------------------------------------------------------------


@st.cache_resource(show_spinner="Opening the class board…", max_entries=4)
def _open(url: str) -> ClassBoard:
    return open_store(url)


def store() -> ClassBoard:
    """The board's store, opened once per process (BoardError when its database is unusable)."""
    return _open(default_url())


def session_id() -> str:
    """Who this browser is to the board: its seat token (see `ui.seats`)."""
    token = st.session_state.get("seat_token")
    if isinstance(token, str) and token:
        return token
    return st.session_state.setdefault(FALLBACK_SESSION, secrets.token_urlsafe(24))


def known_browser(token: str) -> bool:
    """Whether a browser's seat token is a member of a class on the board (`ui.seats`: a
    student whose replica died keeps their token, so their nickname, on the next one)."""
    try:
        return store().knows_session(token)
    except BoardError:
        return False


# -- the teacher key -------------------------------------------------------------------------


def teacher_key() -> str | None:
    """The server's teacher key: ``MINILLM_TEACHER_KEY``, else Streamlit secrets, else None."""
    key = os.environ.get(TEACHER_KEY_ENV, "")
    if not key:
        try:
            if st.secrets.load_if_toml_exists():
                for name in TEACHER_SECRET_NAMES:
                    value = st.secrets.get(name)
                    if isinstance(value, str) and value.strip():
                        key = value
                        break
        except Exception:  # an unreadable secrets file: as if there were none
            key = ""
    key = key.strip()
    return key or None


def _fingerprint(text: str) -> bytes:
    return hashlib.sha256(b"minillm-teacher\0" + text.encode("utf-8", "replace")).digest()


def key_matches(typed: str, key: str) -> bool:
    """Whether `typed` is the teacher key, in constant time (hashes first: no length leaks)."""
    return hmac.compare_digest(_fingerprint(typed.strip()), _fingerprint(key))


def teacher_available() -> bool:
    return teacher_key() is not None


def is_teacher() -> bool:
    """Whether this session typed the server's current teacher key."""
    key = teacher_key()
    mark = st.session_state.get(TEACHER)
    return key is not None and isinstance(mark, bytes) and hmac.compare_digest(
        mark, _fingerprint(key))


def _recent(name: str, window: float) -> list[float]:
    now = time.monotonic()
    tries = [t for t in st.session_state.get(name, []) if now - t < window]
    st.session_state[name] = tries
    return tries


def _check_key() -> None:
    """The password field's callback: check, then empty the field (the key is never kept)."""
    typed = st.session_state.get("teacher_key_typed") or ""
    st.session_state["teacher_key_typed"] = ""
    if not typed:
        return
    tries = _recent("_teacher_tries", KEY_WINDOW)
    key = teacher_key()
    if len(tries) >= KEY_TRIES:
        wait = max(1, round((KEY_WINDOW - (time.monotonic() - tries[0])) / 60))
        st.session_state["teacher_message"] = (
            "error", f"{len(tries)} wrong keys from this browser: try again in about "
                     f"{wait} minute{'s' if wait != 1 else ''}.")
        return
    if key is not None and key_matches(typed, key):
        st.session_state[TEACHER] = _fingerprint(key)
        st.session_state["teacher_message"] = ("success", "Teacher mode is on for this browser tab.")
        return
    tries.append(time.monotonic())
    time.sleep(WRONG_KEY_DELAY)
    log.info("a wrong teacher key was typed")  # never the key itself
    st.session_state["teacher_message"] = ("error", "That is not the teacher key.")


def teacher_logout() -> None:
    st.session_state.pop(TEACHER, None)


def teacher_login(box=None) -> bool:
    """The password field (when the server has a key and this session is not the teacher yet);
    True when this session is the teacher."""
    box = box or st
    if not teacher_available():
        return False
    kind, text = st.session_state.pop("teacher_message", (None, None))
    if kind == "success":
        box.success(text, icon=":material/key:")
    elif kind == "error":
        box.error(text, icon=":material/block:")
    if is_teacher():
        return True
    box.text_input("Teacher key", type="password", key="teacher_key_typed",
                   on_change=_check_key, autocomplete="off",
                   help="Set on the server (MINILLM_TEACHER_KEY or Streamlit secrets). It is "
                        "checked once and never shown, kept or put in a link.")
    return False


def teacher_board():
    """The store's teacher operations, for a session that passed the teacher key check only."""
    if not is_teacher():
        raise PermissionError("Only the teacher (with the teacher key) can do that.")
    from minillm.store import TeacherBoard  # built here only, after the check

    return TeacherBoard(store())


# -- the class and the nickname --------------------------------------------------------------


def current_class() -> str | None:
    return st.session_state.get(CLASS)


def choose_class(raw: str) -> str | None:
    """Enter the class with code `raw`; None when done, else the sentence saying why not."""
    code = normalize_code(raw)
    problem = code_problem(code)
    if problem:
        return problem
    tries = _recent("_class_tries", CODE_WINDOW)
    if len(tries) >= CODE_TRIES:
        return (f"{len(tries)} unknown class codes from this browser in the last minutes: "
                "check the code with your teacher and try again in a few minutes.")
    try:
        store().class_info(code)
    except BoardError as error:
        tries.append(time.monotonic())
        return str(error)
    st.session_state[CLASS] = code
    st.session_state.pop(MEMBER, None)
    return None


def leave_class() -> None:
    st.session_state.pop(CLASS, None)
    st.session_state.pop(MEMBER, None)
    if CLASS_PARAM in st.query_params:
        del st.query_params[CLASS_PARAM]


def class_from_link() -> None:
    """Every run (app.py): take ``?class=`` from an opened link, or put the session's class
    back in the address bar (a page change drops it), so a reload stays in the class."""
    values = st.query_params.get_all(CLASS_PARAM)
    code = current_class()
    if values:
        asked = normalize_code(values[-1])
        if asked != code and asked != st.session_state.get("_class_refused"):
            problem = choose_class(asked)
            if problem:
                st.session_state["_class_refused"] = asked
                st.session_state["class_notice"] = (
                    f"The link's class “{plain(asked, max_chars=40)}” cannot be opened: "
                    f"{plain(problem)}")
                del st.query_params[CLASS_PARAM]
                if code:
                    st.query_params[CLASS_PARAM] = code
    elif code:
        st.query_params[CLASS_PARAM] = code


def member(refresh: bool = False) -> str | None:
    """This session's nickname in its class (None: not joined), asked of the store once."""
    code = current_class()
    if code is None:
        return None
    known = st.session_state.get(MEMBER)
    if not refresh and isinstance(known, tuple) and known[0] == code:
        return known[1]
    try:
        found = store().member(code, session_id())
    except BoardError:
        return None
    nickname = found.nickname if found else None
    st.session_state[MEMBER] = (code, nickname)
    return nickname


def _join(form_key: str) -> None:
    code = current_class()
    nickname = st.session_state.get(f"{form_key}_nick", "")
    try:
        joined = store().join(code, nickname, session_id())
    except BoardError as error:
        st.session_state[f"{form_key}_message"] = ("error", str(error))
        return
    st.session_state[MEMBER] = (code, joined.nickname)
    st.session_state[f"{form_key}_message"] = (
        "success", f"You are on the board of {code} as “{plain(joined.nickname)}”.")


def join_form(form_key: str, box=None) -> None:
    """A nickname box and a Join button for the session's class."""
    box = box or st
    code = current_class()
    if code is None:
        return
    try:
        limit = store().limits.nickname_chars
    except BoardError as error:
        box.error(str(error), icon=":material/cloud_off:")
        return
    with box.form(key=f"{form_key}_form", border=False, enter_to_submit=True):
        st.text_input(f"Your nickname on the board of {code}", key=f"{form_key}_nick",
                      max_chars=limit, placeholder="e.g. Ada",
                      help="Shown to the class next to your runs. Pick one a teacher may read out.")
        st.form_submit_button("Join the class", icon=":material/group_add:",
                              on_click=_join, args=(form_key,))
    show_message(f"{form_key}_message", box)


def show_message(name: str, box=None) -> None:
    """A message a callback left in session state: shown once, as it is (store sentences)."""
    box = box or st
    kind, text = st.session_state.pop(name, (None, None))
    if kind == "success":
        box.success(text, icon=":material/check_circle:")
    elif kind == "error":
        box.error(text, icon=":material/error:")
    elif kind == "info":
        box.info(text, icon=":material/info:")


def board_link(box=None, label: str = "Open the class board") -> None:
    box = box or st
    try:
        box.page_link(BOARD_PAGE, label=label, icon=":material/leaderboard:")
    except Exception:  # the page is not registered (a page run on its own in a test)
        pass


def sidebar(url_path: str) -> None:
    """The sidebar's class box and teacher panel (app.py, before the page runs)."""
    notice = st.session_state.pop("class_notice", None)
    if notice:
        st.warning(notice, icon=":material/group_off:")
    code = current_class()
    if code is not None:
        with st.sidebar.container(border=True):
            nickname = member()
            if nickname:
                st.markdown(f":material/groups: Class **{code}** · you are **{plain(nickname)}**")
            else:
                st.markdown(f":material/groups: Class **{code}**")
                if url_path != BOARD_URL_PATH:
                    join_form("class_join_sidebar")
            if url_path != BOARD_URL_PATH:
                board_link()
    if teacher_available():
        from ui import lessons  # the lesson link builder lives there

        with st.sidebar.expander("Teacher", icon=":material/key:",
                                 expanded=not is_teacher() and bool(
                                     st.session_state.get("_teacher_tries"))):
            if teacher_login():
                lessons.teacher_panel(url_path)
                st.button("Leave teacher mode", key="teacher_logout", on_click=teacher_logout,
                          icon=":material/logout:")


# -- posting a run ---------------------------------------------------------------------------


def _post(exp, code: str) -> None:
    from minillm.board_report import run_record
    from minillm.checkpoint import save_checkpoint
    from ui import lessons

    message = "class_post_message"
    try:
        board = store()
        record = run_record(exp, board.limits.sample_chars,
                            question=lessons.question_for("train"))
        model = save_checkpoint(exp)
        without = len(model) > board.limits.model_bytes
        entry = board.post_run(code, session_id(), model=None if without else model, **record)
    except BoardError as error:
        st.session_state[message] = ("error", str(error))
        st.session_state.pop(MEMBER, None)  # e.g. the teacher cleared the class: ask again
        return
    exp._board_posts = {**getattr(exp, "_board_posts", {}), code: entry.id}
    note = (" The model file was too big for the board, so the run went up without it."
            if without else "")
    st.session_state[message] = ("success", f"Posted to the board of {code} as run "
                                            f"#{entry.id}.{note}")


def post_button(exp) -> None:
    """Under a finished run (Train): post it to the session's class in one click."""
    code = current_class()
    if code is None or exp is None or not exp.trainer.done:
        return
    box = st.container(border=True)
    show_message("class_post_message", box)
    nickname = member()
    if nickname is None:
        box.markdown(f":material/groups: Class **{code}**: join with a nickname to post "
                     "this run to the class board.")
        join_form("class_join_post", box)
        return
    posted = getattr(exp, "_board_posts", {})
    if code in posted:
        box.caption(f"This run is run #{posted[code]} on the board of {code}.")
    else:
        box.button(f"Post this run to the board of {code} (as {plain(nickname)})",
                   key="class_post", type="primary", icon=":material/publish:",
                   on_click=_post, args=(exp, code),
                   help="Its settings, numbers, one sample sentence and the model file.")
    board_link(box, "See the class board")


def before_page(url_path: str) -> None:
    """app.py, on every run before the page: the class from the link, the sidebar's class box
    and teacher panel, and the page's lesson (`ui.lessons.apply`)."""
    from ui import lessons

    class_from_link()
    sidebar(url_path)
    lessons.apply(url_path)
