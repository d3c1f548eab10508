"""Lesson links: the signed ``lesson=`` parameter, and what it does on a page (AppTest).

A lesson locks or hides controls of one page and shows the teacher's instruction as text; a
malformed, tampered or foreign lesson falls back to the normal page with a notice.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import app_test
from ui import class_mode, lessons
from ui.lessons import CONTROLS, Lesson, make_lesson, read_lesson
from ui.plain_text import plain

ROOT = Path(__file__).resolve().parents[1]
KEY = "correct horse battery staple"
SAY = "Change only the block size. Which value reaches the floor first? <b>*now*</b>"


def test_a_lesson_round_trips_and_carries_no_key():
    lesson = Lesson("train", lock=("train_d_model", "train_block"), hide=("train_seed",), say=SAY)
    token = make_lesson(lesson, KEY)
    assert KEY not in token and "horse" not in token
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{16}", token)
    back = read_lesson(token, "train", KEY)
    assert back == Lesson("train", ("train_block", "train_d_model"), ("train_seed",), SAY)
    assert read_lesson(token, None, KEY) == back


@pytest.mark.parametrize("spoil, words", [
    (lambda t: t[:-2], "not made by this server's teacher"),  # tag cut short
    (lambda t: t[:10] + ("A" if t[10] != "A" else "B") + t[11:], "not made by this server"),
    (lambda t: t.replace(".", ""), "damaged"),
    (lambda t: "%%%." + t.split(".")[1], "damaged"),
    (lambda t: t + "." + t, "damaged"),
    (lambda t: "x" * 3000, "damaged"),
])
def test_a_changed_lesson_falls_back_with_a_sentence(spoil, words):
    token = make_lesson(Lesson("train", lock=("train_block",), say="Only the block size."), KEY)
    problem = read_lesson(spoil(token), "train", KEY)
    assert isinstance(problem, str) and words in problem
    assert problem.endswith("The page opens as usual, with all its controls.")


def test_a_lesson_needs_the_same_key_and_page_and_known_controls():
    token = make_lesson(Lesson("train", lock=("train_block",)), KEY)
    assert "not made by this server's teacher" in read_lesson(token, "train", "another key")
    assert "no teacher key" in read_lesson(token, "train", None)
    assert "another page" in read_lesson(token, "generate", KEY)
    # a lesson signed with the right key but naming a control the page lacks (made by hand)
    import json

    payload = json.dumps({"v": 1, "page": "train", "lock": ["rm_rf"], "hide": [], "say": ""},
                         separators=(",", ":"), sort_keys=True).encode()
    forged = f"{lessons._b64(payload)}.{lessons._b64(lessons._tag(payload, KEY))}"
    assert "names controls this page does not have" in read_lesson(forged, "train", KEY)
    with pytest.raises(ValueError):
        make_lesson(Lesson("train", lock=("rm_rf",)), KEY)
    with pytest.raises(ValueError, match="at most 200 characters"):
        make_lesson(Lesson("train", say="x" * 201), KEY)
    with pytest.raises(ValueError, match="one line"):
        make_lesson(Lesson("train", say="two\nlines"), KEY)


def test_every_lockable_control_is_a_widget_key_of_its_page():
    sources = {path.stem: path.read_text() for path in (ROOT / "pages").glob("*.py")}
    ui_text = "".join(path.read_text() for path in (ROOT / "ui").glob("train_*.py"))
    for page, controls in CONTROLS.items():
        text = sources[page] + (ui_text if page == "train" else "")
        for key in controls:
            assert f'"{key}"' in text, f"{key} is not a key on the {page} page"


# -- on a page ---------------------------------------------------------------------------------


@pytest.fixture
def teacher_key(monkeypatch, tmp_path):
    monkeypatch.setenv("MINILLM_TEACHER_KEY", KEY)
    monkeypatch.setenv("MINILLM_DATABASE_URL", f"sqlite:///{tmp_path / 'board.sqlite'}")
    monkeypatch.setattr(class_mode, "WRONG_KEY_DELAY", 0.0)


def run(at):
    at.run()
    assert not at.exception, at.exception
    return at


def open_link(params: dict[str, str], page: str = "pages/train.py"):
    """A new session that opens `page` with these query parameters."""
    at = run(app_test("app.py"))
    at.query_params.update(params)
    at.switch_page(page)
    return run(at)


def styles(at) -> str:
    return "\n".join(str(h.proto.body) for h in at.html)


def banner(at) -> list[str]:
    return [m.value for m in at.markdown if "**Lesson:**" in m.value]


def test_the_teacher_builds_a_lesson_link_and_a_student_sees_only_the_lesson(teacher_key):
    boss = run(app_test("app.py"))
    boss.switch_page("pages/train.py")
    run(boss)
    boss.text_input(key="teacher_key_typed").input(KEY)
    run(boss)
    boss.text_input(key="lesson_say_train").input(SAY)
    boss.multiselect(key="lesson_hide_train").select("train_seed")
    run(boss)
    boss.multiselect(key="lesson_lock_train").select("train_d_model")
    run(boss)
    link = [c.value for c in boss.code if "lesson=" in c.value][0]
    assert KEY not in link
    query = {k: v[-1] for k, v in parse_qs(urlsplit(link).query).items()}
    assert urlsplit(link).path.endswith("/train") and set(query) == {"lesson"}

    student = open_link(query)
    assert banner(student) == [f":material/school: **Lesson:** {plain(SAY)}"]  # text, not HTML
    toggle = student.toggle(key="lesson_show_all_train")
    assert toggle.label == "Show all controls" and toggle.value is False
    css = styles(student)
    assert ".st-key-train_seed { display: none !important; }" in css
    assert ".st-key-train_d_model { pointer-events: none; opacity: 0.55; }" in css
    assert "st-key-train_block" not in css

    # a locked control that changes anyway goes back to the lesson's value
    run(student)
    student.select_slider(key="train_d_model").set_value(64)
    run(student)
    run(student)
    assert student.select_slider(key="train_d_model").value == 32
    # the block size is free
    student.slider(key="train_block").set_value(3)
    run(student)
    assert student.slider(key="train_block").value == 3
    assert lessons.question_for("train") == ""  # outside a session: no lesson

    # "Show all controls": no CSS, nothing held
    student.toggle(key="lesson_show_all_train").set_value(True)
    run(student)
    assert ".st-key-" not in styles(student) and "<style>" in styles(student)
    student.select_slider(key="train_d_model").set_value(64)
    run(student)
    run(student)
    assert student.select_slider(key="train_d_model").value == 64


def test_a_tampered_lesson_opens_the_normal_page_with_a_notice(teacher_key):
    token = make_lesson(Lesson("train", hide=("train_block",), say="Only the seed."), KEY)
    body, tag = token.split(".")
    evil = lessons._b64(lessons._unb64(body).replace(b"Only the seed.", b"Go to evil.example"))
    student = open_link({"lesson": f"{evil}.{tag}"})
    assert not banner(student)
    assert ".st-key-" not in styles(student)
    notices = [w.value for w in student.warning]
    assert any("not made by this server's teacher, or was changed" in n for n in notices)
    assert "lesson" not in student.query_params


def test_without_a_teacher_key_a_lesson_is_not_applied(monkeypatch, tmp_path):
    monkeypatch.delenv("MINILLM_TEACHER_KEY", raising=False)
    monkeypatch.setenv("MINILLM_DATABASE_URL", f"sqlite:///{tmp_path / 'board.sqlite'}")
    token = make_lesson(Lesson("train", hide=("train_block",)), KEY)
    student = open_link({"lesson": token})
    assert not banner(student)
    assert any("no teacher key" in w.value for w in student.warning)


def test_a_lesson_of_another_page_waits_for_its_page(teacher_key):
    token = make_lesson(Lesson("train", lock=("train_block",), say="Only the block size."), KEY)
    student = open_link({"lesson": token}, page="pages/generate.py")
    assert not banner(student) and not student.warning
    student.switch_page("pages/train.py")
    run(student)
    assert banner(student) == [":material/school: **Lesson:** Only the block size\\."]
