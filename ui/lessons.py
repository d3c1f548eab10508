"""Lesson links: a page set up by the teacher, with chosen controls locked or hidden and a
short instruction at the top ("Change only the block size. Which value reaches the floor
first?").

A lesson link is the page's ordinary shared link (its settings in the address bar, see
`ui.links`) plus one parameter, ``lesson=``, that carries the lesson:

    lesson = base64url(JSON {"v": 1, "page": "train", "lock": [...], "hide": [...],
                             "say": "Change only the block size."}) "." base64url(tag)

The tag is an HMAC-SHA256 (first 12 bytes) of the JSON, keyed with the server's teacher key
(`ui.class_mode.teacher_key`): only a teacher makes lessons, and a link edited by hand (say, a
student who rewrites the instruction before passing the link on) no longer matches. The key
itself is never in the link. A lesson that does not parse, does not match its tag, names
controls the page does not have, or belongs to another page falls back to the normal page
with a notice saying so (`read_lesson` says why, in a sentence).

What a lesson does on its page (`apply`, from app.py before the page runs):

- shows the instruction at the top, as text (`ui.plain_text.plain`: the teacher's words are
  never Markdown or HTML), with a "Show all controls" toggle, off;
- hides the hidden controls and greys out the locked ones (CSS on Streamlit's ``st-key-<key>``
  class of each widget), and puts a locked control back to the lesson's value if it changes
  anyway (a keyboard, or a page that was open before);
- the toggle undoes both for this session.

Pages that want the real ``disabled=`` flag ask `locked(key)` / `hidden(key)`.

The lesson of a page is kept in the session (a page change drops the link's parameters) and
put back in the address bar while the student is on that page, so a reload keeps it. A run
posted to the class board from a lesson's page carries its instruction as its question
(`question_for`), so the board can show the best run per question.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlencode

import streamlit as st

from ui.plain_text import plain

PARAM = "lesson"
VERSION = 1
TAG_BYTES = 12
MAX_SAY_CHARS = 200
MAX_TOKEN_CHARS = 2_000
LESSONS = "lessons"  # session state: url_path -> Lesson
SHOW_ALL = "lesson_show_all_"  # + url_path: the toggle's key

#: The controls a lesson may lock or hide, per page (url_path -> widget key -> what it is).
#: The keys are the pages' own (their LINK_KEYS); tests/test_lessons.py checks they exist.
CONTROLS: dict[str, dict[str, str]] = {
    "words_vs_tokens": {"wvt_n": "Number of words (N)", "wvt_text": "Your own text"},
    "compare": {"cmp_preset": "Preset sentences", "cmp_text": "The text",
                "cmp_words": "Word list", "cmp_corpus": "Corpus for the BPE",
                "cmp_piece": "Piece picker"},
    "build_bpe": {"bpe_corpus": "Corpus", "bpe_text": "Your own text", "bpe_words": "Words",
                  "bpe_merges": "Merges", "bpe_split": "Pre-split", "bpe_step": "Merge step",
                  "bpe_sentence": "Sentence"},
    "train": {"train_corpus": "Corpus", "train_tokenizer": "Tokenizer",
              "train_block": "Block size", "train_d_model": "d_model",
              "train_heads": "Attention heads", "train_lr": "Learning rate",
              "train_epochs": "Epochs", "train_seed": "Seed", "train_eos": "EOS token",
              "train_loss_on": "Loss on", "train_causal": "Causal mask",
              "train_valid": "Held-out share", "train_layers": "Layers",
              "train_batch": "Batch size"},
    "generate": {"generate_prompt": "Prompt", "generate_temperature": "Temperature",
                 "generate_top_k": "Top-k", "generate_max_new": "Max new tokens",
                 "generate_seed": "Seed", "generate_greedy": "Greedy"},
    "attention": {"attention_source": "Context source", "attention_text": "Typed context",
                  "attention_epoch": "Epoch replayed"},
}


@dataclass(frozen=True)
class Lesson:
    page: str
    lock: tuple[str, ...] = ()
    hide: tuple[str, ...] = ()
    say: str = ""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    if not text or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                       for c in text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _tag(payload: bytes, key: str) -> bytes:
    return hmac.new(key.encode("utf-8"), b"minillm-lesson\0" + payload,
                    hashlib.sha256).digest()[:TAG_BYTES]


def say_problem(say: str) -> str | None:
    """Why an instruction cannot go in a lesson, or None."""
    if len(say) > MAX_SAY_CHARS:
        return f"An instruction can be at most {MAX_SAY_CHARS} characters; this one has {len(say)}."
    if any(unicodedata.category(c) in ("Cc", "Cs", "Co", "Cn") for c in say):
        return "An instruction is one line of text: no line breaks, tabs or control characters."
    return None


def make_lesson(lesson: Lesson, key: str) -> str:
    """The ``lesson=`` value for `lesson`, tagged with the teacher `key` (ValueError if bad)."""
    controls = CONTROLS.get(lesson.page)
    if controls is None:
        raise ValueError(f"The page “{lesson.page}” has no controls a lesson can lock.")
    unknown = [k for k in (*lesson.lock, *lesson.hide) if k not in controls]
    if unknown:
        raise ValueError(f"The page “{lesson.page}” has no control {', '.join(unknown)}.")
    problem = say_problem(lesson.say)
    if problem:
        raise ValueError(problem)
    body = {"v": VERSION, "page": lesson.page, "lock": sorted(set(lesson.lock)),
            "hide": sorted(set(lesson.hide)), "say": lesson.say.strip()}
    payload = json.dumps(body, separators=(",", ":"), sort_keys=True,
                         ensure_ascii=False).encode("utf-8")
    return f"{_b64(payload)}.{_b64(_tag(payload, key))}"


def read_lesson(token: str, page: str | None, key: str | None) -> Lesson | str:
    """The lesson in a ``lesson=`` value (for `page`; None: for any lab page), or the sentence
    saying why it is unusable."""
    fallback = " The page opens as usual, with all its controls."
    if key is None:
        return "This server has no teacher key, so it cannot check lesson links." + fallback
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        return "The link's lesson is damaged (cut short or changed)." + fallback
    body_text, tag_text = token.split(".")
    try:
        payload, tag = _unb64(body_text), _unb64(tag_text)
    except (ValueError, binascii.Error):
        return "The link's lesson is damaged (cut short or changed)." + fallback
    if not hmac.compare_digest(tag, _tag(payload, key)):
        return ("The link's lesson was not made by this server's teacher, or was changed "
                "after it was made." + fallback)
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "The link's lesson is damaged (cut short or changed)." + fallback
    if not isinstance(body, dict) or body.get("v") != VERSION:
        return "The link's lesson is from another version of MiniLLM Lab." + fallback
    lock, hide, say, target = body.get("lock"), body.get("hide"), body.get("say"), body.get("page")
    if not (isinstance(lock, list) and isinstance(hide, list) and isinstance(say, str)
            and isinstance(target, str)):
        return "The link's lesson is damaged (cut short or changed)." + fallback
    if page is not None and target != page:
        return "The link's lesson belongs to another page." + fallback
    controls = CONTROLS.get(target, {})
    if not all(isinstance(k, str) and k in controls for k in (*lock, *hide)) or say_problem(say):
        return "The link's lesson names controls this page does not have." + fallback
    return Lesson(target, tuple(lock), tuple(hide), say)


# -- in the app ----------------------------------------------------------------------------


def _key() -> str | None:
    from ui.class_mode import teacher_key

    return teacher_key()


def current(url_path: str) -> Lesson | None:
    """The lesson of this page in this session (None: the normal page)."""
    return st.session_state.get(LESSONS, {}).get(url_path)


def question_for(url_path: str) -> str:
    """The instruction of the page's lesson ("" without one): a posted run's question."""
    lesson = current(url_path)
    return lesson.say if lesson is not None else ""


def _showing_all(url_path: str) -> bool:
    return bool(st.session_state.get(SHOW_ALL + url_path, False))


def locked(key: str, url_path: str = "train") -> bool:
    """Whether the control `key` is locked by the page's lesson (and not shown all)."""
    lesson = current(url_path)
    return lesson is not None and key in lesson.lock and not _showing_all(url_path)


def hidden(key: str, url_path: str = "train") -> bool:
    """Whether the control `key` is hidden by the page's lesson (and not shown all)."""
    lesson = current(url_path)
    return lesson is not None and key in lesson.hide and not _showing_all(url_path)


def _css_class(key: str) -> str:
    return "st-key-" + "".join(c if c.isalnum() or c in "_-" else "-" for c in key)


def _style(lesson: Lesson) -> str:
    rules = [f".{_css_class(k)} {{ display: none !important; }}" for k in lesson.hide]
    for k in lesson.lock:
        if k in lesson.hide:
            continue
        rules.append(f".{_css_class(k)} {{ pointer-events: none; opacity: 0.55; }}")
        rules.append(f'.{_css_class(k)}::before {{ content: "🔒 locked by the lesson"; '
                     "font-size: 0.8rem; color: #555; }")
    return "<style>\n" + "\n".join(rules) + "\n</style>"


def _hold_locked(lesson: Lesson) -> None:
    """A locked control keeps the value it had when the lesson began."""
    values = st.session_state.setdefault("_lesson_values", {})
    moved = False
    for key in lesson.lock:
        if key not in st.session_state:
            continue
        mark = (lesson.page, key)
        if mark not in values:
            values[mark] = st.session_state[key]
        elif st.session_state[key] != values[mark]:
            st.session_state[key] = values[mark]
            moved = True
    if moved:
        st.toast("That control is locked by the lesson (turn on “Show all controls” to change it).",
                 icon=":material/lock:")


def apply(url_path: str) -> Lesson | None:
    """Every run (app.py, before the page): read a lesson link, show the lesson, lock and hide."""
    lessons = st.session_state.setdefault(LESSONS, {})
    values = st.query_params.get_all(PARAM)
    if values and values[-1] not in st.session_state.setdefault("_lesson_tokens", {}).values():
        found = read_lesson(values[-1], None, _key())
        if isinstance(found, str):
            lessons.pop(url_path, None)
            st.session_state["_lesson_notice"] = (url_path, found)
            st.session_state["_lesson_tokens"][url_path] = values[-1]  # said once
            del st.query_params[PARAM]
        else:  # kept for its page (a link to Train opened on another page still counts)
            lessons[found.page] = found
            st.session_state["_lesson_tokens"][found.page] = values[-1]
            st.session_state.pop(SHOW_ALL + found.page, None)
            st.session_state.get("_lesson_values", {}).clear()
    notice = st.session_state.get("_lesson_notice")
    if notice:
        if notice[0] == url_path:
            st.warning(notice[1], icon=":material/link_off:")
        else:
            st.session_state.pop("_lesson_notice", None)
    lesson = lessons.get(url_path)
    if lesson is None:
        return None
    token = st.session_state.get("_lesson_tokens", {}).get(url_path)
    if token and st.query_params.get(PARAM) != token:
        st.query_params[PARAM] = token  # a reload keeps the lesson
    with st.container(border=True, key="lesson_banner"):
        text, toggle = st.columns([3, 1], vertical_alignment="center")
        if lesson.say:
            text.markdown(f":material/school: **Lesson:** {plain(lesson.say)}")
        else:
            text.markdown(":material/school: **Lesson:** this page is set up by your teacher.")
        toggle.toggle("Show all controls", key=SHOW_ALL + url_path, value=False)
        showing_all = _showing_all(url_path)
        # always one style element here, so the page's own elements keep their places (an
        # element that comes and goes would make the settings' expander fold on the toggle)
        st.html(_style(Lesson(url_path)) if showing_all else _style(lesson))
    if not showing_all:
        _hold_locked(lesson)
    return lesson


# -- the teacher's lesson builder ----------------------------------------------------------


def page_address(url_path: str, params: dict[str, list[str]]) -> str:
    """The address of page `url_path` on this server with `params` (relative if unknown)."""
    here = st.context.url or ""
    base = here.rstrip("/")
    for name in CONTROLS:
        if base.endswith("/" + name):
            base = base[: -len(name) - 1]
    for name in ("class_board", "home"):
        if base.endswith("/" + name):
            base = base[: -len(name) - 1]
    query = urlencode([(k, v) for k, vs in params.items() for v in vs])
    return f"{base}/{url_path}" + (f"?{query}" if query else "")


def teacher_panel(url_path: str) -> None:
    """In the sidebar's Teacher box: build a lesson link for this page as it is set up now."""
    from ui.class_mode import current_class

    controls = CONTROLS.get(url_path)
    if controls is None:
        st.caption("Lesson links are made on the lab pages (Tokens lab, Model lab): open one, "
                   "set it up, and build its link here.")
        return
    st.markdown("**Lesson link for this page**")
    st.caption("Set the page up first (its settings go in the link), then choose:")
    say = st.text_input("Instruction shown at the top", key=f"lesson_say_{url_path}",
                        max_chars=MAX_SAY_CHARS,
                        placeholder="Change only the block size. Which value reaches the floor "
                                    "first?")
    names = list(controls)
    hide = st.multiselect("Hide these controls", names, key=f"lesson_hide_{url_path}",
                          format_func=controls.get)
    lock = st.multiselect("Lock these controls", [n for n in names if n not in hide],
                          key=f"lesson_lock_{url_path}", format_func=controls.get)
    code = current_class()
    with_class = bool(code) and st.checkbox(f"Students join class {code}", value=True,
                                            key=f"lesson_class_{url_path}")
    problem = say_problem(say)
    if problem:
        st.error(problem, icon=":material/error:")
        return
    token = make_lesson(Lesson(url_path, tuple(lock), tuple(hide), say.strip()), _key())
    params = {k: st.query_params.get_all(k) for k in st.query_params
              if k not in (PARAM, "class")}
    params[PARAM] = [token]
    if with_class:
        params["class"] = [code]
    st.code(page_address(url_path, params), language=None, wrap_lines=True)
    st.caption("Copy it (the icon at its corner) and send it to the class. It carries no key: "
               "a changed link falls back to the normal page.")
