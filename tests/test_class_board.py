"""AppTest of class mode: the Class board page, posting from Train, the teacher key and panel.

Every test gets its own SQLite board in tmp_path (``MINILLM_DATABASE_URL``; the store is
opened once per process through st.cache_resource, which the autouse fixture of conftest
clears) and, unless it says otherwise, the teacher key ``KEY``. Each AppTest of app.py is one
browser: its own seat token, so its own identity on the board.
"""

from __future__ import annotations

import pytest
import streamlit as st

from conftest import app_test, trained_experiment
from conftest_store import postgres_server  # noqa: F401 (fixture)
from minillm.store import BoardLimits, TeacherBoard, open_store
from ui import class_mode, seats
from ui.plain_text import plain

KEY = "correct horse battery staple"
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def board_url(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'board.sqlite'}"
    monkeypatch.setenv("MINILLM_DATABASE_URL", url)
    monkeypatch.setenv("MINILLM_TEACHER_KEY", KEY)
    monkeypatch.setenv("MINILLM_BOARD_NICKNAME_CHARS", "32")  # XSS has 28 characters
    monkeypatch.setattr(class_mode, "WRONG_KEY_DELAY", 0.0)
    return url


def make_class(url: str, code: str = "7b-tokens", **limits) -> str:
    board = open_store(url, limits=BoardLimits(**limits) if limits else None)
    try:
        return TeacherBoard(board).create_class(code).code
    finally:
        board.close()


def run(at):
    at.run()
    assert not at.exception, at.exception
    return at


def browser(page: str | None = None, code: str | None = None):
    """A new browser session on app.py (with ?class=code), then on `page` if given."""
    at = app_test("app.py")
    if code:
        at.query_params["class"] = code
    run(at)
    if page:
        at.switch_page(page)
        run(at)
    return at


def texts(at) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.value for e in at.error] + [s.value for s in at.success]
    parts += [i.value for i in at.info] + [w.value for w in at.warning]
    return "\n".join(str(p) for p in parts)


def button(at, label: str):
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r} in {[b.label for b in at.button]}"
    return found[0]


def join(at, nickname: str, form: str = "class_join_sidebar"):
    at.text_input(key=f"{form}_nick").input(nickname)
    button(at, "Join the class").click()
    return run(at)


def type_key(at, key: str):
    at.text_input(key="teacher_key_typed").input(key)
    return run(at)


def teacher(page: str = "pages/class_board.py", code: str | None = None):
    at = browser(page, code)
    type_key(at, KEY)
    assert class_mode.TEACHER in at.session_state
    return at


def train_and_post(at, seed: int = 42, epochs: int = 40):
    """This session trains a run (seeded, short), opens Train and presses Post."""
    at.session_state["experiment"] = trained_experiment(seed=seed, epochs=epochs)
    at.switch_page("pages/train.py")
    run(at)
    at.button(key="class_post").click()
    return run(at)


def board_frame(at):
    tables = [df.value for df in at.dataframe if "nickname" in df.value.columns
              and "final loss" in df.value.columns]
    assert tables, "no runs table on the page"
    return tables[0]


# -- the teacher key ---------------------------------------------------------------------------


def test_without_a_key_there_is_no_teacher_panel(board_url, monkeypatch):
    monkeypatch.delenv("MINILLM_TEACHER_KEY")
    make_class(board_url)
    for page in ("pages/train.py", "pages/class_board.py"):
        at = browser(page, "7b-tokens")
        assert not [t for t in at.text_input if t.key == "teacher_key_typed"]
        assert not [e for e in at.expander if "Teacher" in e.label]
        assert "board_start" not in [b.key for b in at.button]
        # a forged mark in session state is not the teacher
        at.session_state[class_mode.TEACHER] = b"\0" * 32
        run(at)
        assert not [e for e in at.expander if "Teacher" in e.label]


def test_a_wrong_key_is_refused_and_a_right_one_opens_the_panel(board_url):
    make_class(board_url)
    at = browser("pages/class_board.py", "7b-tokens")
    assert not [e for e in at.expander if e.label.startswith("Teacher:")]
    type_key(at, "guess")
    assert "That is not the teacher key." in texts(at)
    assert class_mode.TEACHER not in at.session_state
    assert not [e for e in at.expander if e.label.startswith("Teacher:")]
    type_key(at, KEY)
    assert "Teacher mode is on" in texts(at)
    labels = [e.label for e in at.expander]
    assert "Teacher: classes" in labels and "Teacher: runs and the class" in labels
    # the key is nowhere: not in the field, the address bar or session state
    assert at.text_input(key="teacher_key_typed").value == "" if [
        t for t in at.text_input if t.key == "teacher_key_typed"] else True
    assert KEY not in repr(dict(at.query_params))
    assert all(KEY not in repr(at.session_state[k]) for k in at.session_state)


def test_wrong_keys_are_rate_limited_per_session(board_url):
    at = browser("pages/class_board.py")
    for _ in range(class_mode.KEY_TRIES):
        type_key(at, "guess")
    type_key(at, KEY)  # even the right key waits now
    assert class_mode.TEACHER not in at.session_state
    assert "wrong keys from this browser" in texts(at)


def test_the_key_may_come_from_streamlit_secrets(board_url, monkeypatch):
    monkeypatch.delenv("MINILLM_TEACHER_KEY")
    at = app_test("app.py")
    at.secrets["teacher_key"] = "from-secrets-1234"
    run(at)
    at.switch_page("pages/class_board.py")
    run(at)
    type_key(at, "from-secrets-1234")
    assert "Teacher: classes" in [e.label for e in at.expander]


# -- the board -------------------------------------------------------------------------------


def test_a_teacher_starts_a_class_with_a_hard_to_guess_code(board_url):
    at = teacher()
    button(at, "Start a class").click()
    run(at)
    code = at.session_state[class_mode.CLASS]
    from minillm.store.codes import CODE_FORMAT

    assert CODE_FORMAT.match(code) and code.count("-") == 2 and code[-6:].isdigit()
    links = [c.value for c in at.code]
    assert any(f"/train?class={code}" in link for link in links), links


def test_two_students_post_and_the_board_shows_both(board_url):
    code = make_class(board_url)
    ada, bo = browser(code=code), browser(code=code)
    join(ada, "Ada")
    join(bo, XSS)
    train_and_post(ada, seed=1)
    assert "Posted to the board of 7b-tokens as run #1." in texts(ada)
    train_and_post(bo, seed=2)
    assert "as run #2" in texts(bo)
    # the run is posted once: the button is gone for it
    assert "class_post" not in [b.key for b in ada.button]

    viewer = browser("pages/class_board.py", code)
    frame = board_frame(viewer)
    assert list(frame["nickname"]) == ["Ada", XSS]  # kept and shown exactly as typed
    assert list(frame["parameters"]) == [ada.session_state["experiment"].model.num_parameters()] * 2
    assert (frame["sample"].str.len() > 0).all()
    best = [df.value for df in viewer.dataframe if "question" in df.value.columns
            and "which loss" in df.value.columns][0]
    assert len(best) == 1  # one question: "(no lesson)"
    # no held-out lines in these runs: their cells show a dash, not the word "None"
    assert frame["held-out loss"].isna().all()
    tables = [df for df in viewer.dataframe if "nickname" in df.value.columns]
    assert {df.proto.placeholder for df in tables} == {"—"}
    # the rude nickname, where it is in Markdown, is escaped text
    markdown = texts(viewer)
    assert XSS not in markdown

    # each student's own run is starred on their board
    ada.switch_page("pages/class_board.py")
    run(ada)
    mine = board_frame(ada)
    assert list(mine["★"]) == ["★", ""]


def test_still_training_lists_who_joined_and_has_not_posted(board_url):
    code = make_class(board_url)
    ada, cy = browser(code=code), browser(code=code)
    join(ada, "Ada")
    join(cy, "Cy **bold**")
    train_and_post(ada)
    viewer = browser("pages/class_board.py", code)
    line = [m.value for m in viewer.markdown if m.value.startswith("**Still training**")]
    assert line and "Cy \\*\\*bold\\*\\*" in line[0] and "Ada" not in line[0]


def test_classes_are_isolated(board_url):
    make_class(board_url, "class-a")
    make_class(board_url, "class-b")
    ada = browser(code="class-a")
    join(ada, "Ada")
    train_and_post(ada)
    b_board = browser("pages/class_board.py", "class-b")
    assert not [df for df in b_board.dataframe if "nickname" in df.value.columns]
    assert "No runs on the board yet." in texts(b_board)
    # Ada opens a link to class b: she is not a member there, so she cannot post to it
    ada.query_params["class"] = "class-b"
    ada.switch_page("pages/train.py")
    run(ada)
    assert ada.session_state[class_mode.CLASS] == "class-b"
    assert "class_post" not in [b.key for b in ada.button]
    assert "join with a nickname to post" in texts(ada)


def test_a_bad_or_unknown_class_code_in_the_link_says_so(board_url):
    make_class(board_url)
    at = browser(code="no-such-class")  # the page the link opens says it
    # the store's sentence, as is (escaped for Markdown: the code comes from the link)
    assert plain("There is no class with the code “no-such-class” (it may have ended).") in texts(at)
    assert class_mode.CLASS not in at.session_state
    assert "class" not in at.query_params
    at = browser(code="7b tokens")
    assert plain("only letters a-z, digits and hyphens (no spaces)") in texts(at)


def test_limits_answer_in_sentences(board_url, monkeypatch):
    monkeypatch.setenv("MINILLM_BOARD_POSTS_PER_MINUTE", "1")
    monkeypatch.setenv("MINILLM_BOARD_SAMPLE_CHARS", "12")
    code = make_class(board_url)
    at, other = browser(code=code), browser(code=code)
    join(at, "Ada")
    join(other, "ADA")
    assert "Someone in this class already uses the nickname “ADA”; pick another one." in texts(other)
    join(other, "   ")
    assert "Pick a nickname to show on the class board." in texts(other)
    train_and_post(at, seed=1)
    assert "as run #1" in texts(at)
    train_and_post(at, seed=2)  # a new run, a second post within the minute
    assert "You posted 1 runs in the last minute" in texts(at)
    viewer = browser("pages/class_board.py", code)
    assert all(len(s) <= 12 for s in board_frame(viewer)["sample"])


def test_a_closed_class_refuses_posts_and_a_cleared_one_forgets_nicknames(board_url):
    code = make_class(board_url)
    ada = browser(code=code)
    join(ada, "Ada")
    train_and_post(ada, seed=1)
    boss = teacher(code=code)
    button(boss, "Close the class").click()
    run(boss)
    assert "is closed" in texts(boss)
    train_and_post(ada, seed=2)
    assert "The class “7b-tokens” is closed: the teacher has stopped new posts." in texts(ada)
    button(boss, "Reopen the class").click()
    run(boss)
    boss.checkbox(key="board_clear_sure").check()
    run(boss)
    button(boss, "Clear the board").click()
    run(boss)
    assert "1 runs and all nicknames deleted" in texts(boss)
    train_and_post(ada, seed=3)
    assert "Join the class “7b-tokens” with a nickname before posting to it." in texts(ada)
    run(ada)
    assert "join with a nickname to post" in texts(ada)


def test_a_student_cannot_hide_and_the_teacher_can(board_url):
    code = make_class(board_url)
    ada = browser(code=code)
    join(ada, XSS)
    train_and_post(ada)
    ada.switch_page("pages/class_board.py")
    run(ada)
    assert not {"board_hide", "board_show", "board_open", "board_clear"} & {b.key for b in ada.button}
    with pytest.raises(PermissionError):  # outside a teacher's session: no TeacherBoard
        class_mode.teacher_board()

    boss = teacher(code=code)
    assert boss.selectbox(key="board_pick_run").value == 1
    button(boss, "Hide from the board").click()
    run(boss)
    assert "Run #1 is hidden from the board." in texts(boss)
    run(ada)
    assert "No runs on the board yet." in texts(ada)
    button(boss, "Show again").click()
    run(boss)
    run(ada)
    assert list(board_frame(ada)["nickname"]) == [XSS]


def test_the_teacher_opens_a_posted_model_and_generate_uses_it(board_url):
    code = make_class(board_url)
    ada = browser(code=code)
    join(ada, "Ada")
    train_and_post(ada, seed=7, epochs=60)
    posted = ada.session_state["experiment"]

    boss = teacher(code=code)
    assert "experiment" not in boss.session_state or boss.session_state["experiment"] is None
    button(boss, "Open on this screen").click()
    run(boss)
    assert "Run #1 is now the model of this screen" in texts(boss)
    shown = boss.session_state["experiment"]
    assert shown is not posted and shown.settings == posted.settings
    assert shown.trainer.history == posted.trainer.history
    boss.switch_page("pages/generate.py")
    run(boss)
    assert any("seed 7" in c.value and "60 of 60 epochs" in c.value for c in boss.caption)


def test_a_posted_run_survives_a_restart(board_url):
    code = make_class(board_url)
    ada = browser(code=code)
    join(ada, "Ada")
    train_and_post(ada)
    st.cache_resource.clear()  # the server restarts: the store is opened again from its file
    st.cache_data.clear()
    viewer = browser("pages/class_board.py", code)
    assert list(board_frame(viewer)["nickname"]) == ["Ada"]


def test_a_post_is_visible_from_another_replica_on_postgresql(postgres_server, monkeypatch):
    url = postgres_server.fresh_database()
    monkeypatch.setenv("MINILLM_DATABASE_URL", url)
    monkeypatch.setenv("MINILLM_TEACHER_KEY", KEY)
    code = make_class(url)
    ada = browser(code=code)
    join(ada, "Ada")
    train_and_post(ada)
    st.cache_resource.clear()  # another server process: its own store on the same database
    viewer = browser("pages/class_board.py", code)
    assert list(board_frame(viewer)["nickname"]) == ["Ada"]


def test_the_board_page_alone_asks_for_a_code(board_url):
    make_class(board_url)
    at = run(app_test("pages/class_board.py"))
    at.text_input(key="board_code").input("7B-Tokens ")
    run(at)
    assert at.session_state[class_mode.CLASS] == "7b-tokens"
    join(at, "Ada", form="class_join_board")
    assert "You are on this board as **Ada**" in texts(at)


def test_a_run_posted_from_a_lesson_answers_its_question(board_url):
    from ui.lessons import Lesson

    code = make_class(board_url)
    ada, bo, cy = browser(code=code), browser(code=code), browser(code=code)
    for at, name in ((ada, "Ada"), (bo, "Bo"), (cy, "Cy")):
        join(at, name)
    question = "Change only the block size. Which value reaches the floor first?"
    for at in (ada, bo):
        at.session_state["lessons"] = {"train": Lesson("train", lock=("train_d_model",),
                                                       say=question)}
    train_and_post(ada, seed=1, epochs=20)
    train_and_post(bo, seed=2, epochs=200)  # trained longer: the lower loss
    train_and_post(cy, seed=3, epochs=30)  # no lesson
    viewer = browser("pages/class_board.py", code)
    best = [df.value for df in viewer.dataframe if "which loss" in df.value.columns][0]
    assert list(best["question"]) == [question, "(no lesson)"]
    assert list(best["nickname"]) == ["Bo", "Cy"]
    assert set(board_frame(viewer)["question"]) == {question, "(no lesson)"}


def test_a_student_whose_replica_died_keeps_their_nickname_on_the_next(board_url, monkeypatch):
    """The board is shared by the replicas, the seats (models) are not: a browser whose
    replica died reaches another with its seat token, which keeps its place on the board."""
    code = make_class(board_url)
    ada = browser(code=code)
    join(ada, "Ada")
    token = ada.session_state[seats.TOKEN_KEY]
    seats.seat_store()._seats.clear()  # another replica: it never saw this browser's seat
    monkeypatch.setattr(seats, "browser_token", lambda: token)
    again = browser(code=code)
    assert again.session_state[seats.TOKEN_KEY] == token
    assert "you are **Ada**" in texts(again)
    assert not [t for t in again.text_input if t.key == "class_join_sidebar_nick"]
    # a token the board does not know (made up, or its class is gone) is replaced
    monkeypatch.setattr(seats, "browser_token", lambda: "A" * 32)
    stranger = browser(code=code)
    assert stranger.session_state[seats.TOKEN_KEY] != "A" * 32
    assert "you are" not in texts(stranger)
