"""The class board in a real browser: two students join one class, train and post; the board
shows both, live; a nickname made of HTML and script shows as text and runs nothing.

The server is this module's own (`running_server`), started with a SQLite board in a temp
folder and a teacher key, so the test never touches a real board. Each student is a browser
context of its own: its own cookies, so its own seat and identity on the board.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest

from conftest import VIEWPORT, artifacts_dir, running_server

pytestmark = pytest.mark.browser

CODE = "7b-tokens"
XSS = "<img src=x onerror=alert(1)>"
KEY = "browser-test-teacher-key"
DONE_MARKER = "Training done:"
TRAIN_TIMEOUT_MS = 120_000
LIVE_TIMEOUT_MS = 30_000  # the board polls every 3 s


@pytest.fixture(scope="module")
def board_server():
    folder = Path(tempfile.mkdtemp(prefix="minillm-board-"))
    url = f"sqlite:///{folder / 'board.sqlite'}"
    env = {"MINILLM_DATABASE_URL": url, "MINILLM_TEACHER_KEY": KEY,
           "MINILLM_BOARD_NICKNAME_CHARS": "32"}
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        from minillm.store import TeacherBoard, open_store

        board = open_store(url)
        TeacherBoard(board).create_class(CODE)
        board.close()
        with running_server("streamlit-server-class-board.log") as base_url:
            yield base_url
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class Student:
    def __init__(self, browser, base_url: str):
        self.context = browser.new_context(viewport=VIEWPORT)
        self.page = self.context.new_page()
        self.base_url = base_url
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def idle(self):
        self.page.wait_for_selector(
            "[data-testid='stApp'][data-test-script-state='notRunning']", state="attached",
            timeout=60_000)
        self.page.wait_for_timeout(500)

    def goto(self, path: str):
        self.page.goto(f"{self.base_url}/{path}")
        self.idle()

    def no_exception(self):
        assert not self.page.locator("[data-testid='stException']").count()

    def screenshot(self, name: str):
        folder = artifacts_dir() / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        height = self.page.evaluate(
            "() => Math.max(document.documentElement.scrollHeight,"
            " document.querySelector(\"[data-testid='stMain']\")?.scrollHeight || 0)")
        self.page.set_viewport_size({"width": VIEWPORT["width"], "height": min(height, 8000)})
        self.page.wait_for_timeout(500)
        self.page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
        self.page.set_viewport_size(VIEWPORT)

    def join(self, nickname: str):
        sidebar = self.page.locator("[data-testid='stSidebar']")
        sidebar.get_by_test_id("stTextInputField").and_(
            sidebar.get_by_label(re.compile("Your nickname on the board"))).fill(nickname)
        sidebar.get_by_role("button", name="Join the class").click()
        self.page.get_by_text(re.compile("you are", re.I)).first.wait_for(timeout=30_000)
        self.idle()

    def train(self):
        self.page.get_by_role("button", name="Train", exact=True).click()

    def wait_done(self):
        self.page.locator("[data-testid='stAlertContentSuccess']",
                          has_text=DONE_MARKER).wait_for(timeout=TRAIN_TIMEOUT_MS)

    def post(self) -> str:
        self.page.get_by_role("button", name=re.compile("Post this run")).click()
        posted = self.page.get_by_text(re.compile(r"Posted to the board of 7b-tokens as run #\d+"))
        posted.wait_for(timeout=30_000)
        return posted.inner_text()

    def close(self):
        self.context.close()


def test_two_students_post_and_the_board_shows_both_as_text(browser, board_server):
    ada, eve = Student(browser, board_server), Student(browser, board_server)
    try:
        for student, name in ((ada, "Ada"), (eve, XSS)):
            student.goto(f"train?class={CODE}")
            student.no_exception()
            student.join(name)
        ada.train()
        eve.train()  # both at once
        ada.wait_done()
        eve.wait_done()
        assert "as run #" in ada.post()
        ada.screenshot("train-posted-to-the-board")

        # Ada watches the board; Eve's post arrives there by itself (the board polls)
        ada.page.get_by_role("link", name="See the class board").click()
        ada.idle()
        assert re.search(r"/class_board\?class=7b-tokens$", ada.page.url), ada.page.url
        latest = ada.page.get_by_text(re.compile(r"posted run #1"))
        latest.wait_for(timeout=LIVE_TIMEOUT_MS)
        assert "as run #2" in eve.post()
        eve_line = ada.page.get_by_text(re.compile(r"posted run #2"))
        eve_line.wait_for(timeout=LIVE_TIMEOUT_MS)

        # the nickname is text: its characters are on the page, no image element was made
        assert XSS in eve_line.inner_text()
        ada.page.wait_for_timeout(1500)
        assert ada.page.locator("img[src='x']").count() == 0
        assert eve.page.locator("img[src='x']").count() == 0
        assert not ada.dialogs and not eve.dialogs, (ada.dialogs, eve.dialogs)
        assert not ada.errors and not eve.errors, (ada.errors, eve.errors)
        ada.no_exception()
        table = ada.page.locator("[data-testid='stDataFrame']")
        assert table.count() >= 2  # all runs, best per question
        charts = ada.page.locator("[data-testid='stVegaLiteChart'] canvas, "
                                  "[data-testid='stVegaLiteChart'] svg")
        assert charts.count() >= 1
        ada.screenshot("class-board-two-students")
        ada.page.set_viewport_size({"width": 390, "height": 844})  # a phone
        ada.page.wait_for_timeout(1000)
        ada.no_exception()
        assert ada.page.get_by_text(re.compile(r"posted run #2")).is_visible()
        ada.page.screenshot(path=str(artifacts_dir() / "screenshots" / "class-board-phone.png"))
        ada.page.set_viewport_size(VIEWPORT)

        # Eve's own page shows her nickname as text too
        eve.page.reload()
        eve.idle()
        assert XSS in eve.page.locator("[data-testid='stSidebar']").inner_text()
        assert eve.page.locator("img[src='x']").count() == 0
        assert not eve.dialogs

        # the teacher: the key in the sidebar, then moderation and the projector
        boss = Student(browser, board_server)
        try:
            boss.goto(f"class_board?class={CODE}")
            sidebar = boss.page.locator("[data-testid='stSidebar']")
            sidebar.locator("summary", has_text="Teacher").click()  # the folded Teacher box
            field = sidebar.get_by_test_id("stTextInputField").and_(
                sidebar.get_by_label("Teacher key"))
            field.fill(KEY)
            field.press("Enter")
            boss.page.get_by_text("Teacher: runs and the class").wait_for(timeout=30_000)
            boss.idle()
            assert KEY not in boss.page.url and KEY not in boss.page.content()
            assert boss.page.locator("img[src='x']").count() == 0
            boss.screenshot("class-board-teacher")
            boss.page.get_by_role("button", name="Open on this screen").click()
            boss.page.get_by_text(re.compile(r"Run #2 is now the model of this screen")).wait_for(
                timeout=30_000)
            boss.goto("generate")
            boss.no_exception()
            assert not boss.dialogs and not boss.errors
        finally:
            boss.close()
    finally:
        ada.close()
        eve.close()


def test_a_lesson_link_hides_and_locks_controls_in_the_browser(browser, board_server):
    from ui.lessons import Lesson, make_lesson

    say = "Change only the block size. <b>Which</b> value reaches the floor first?"
    token = make_lesson(Lesson("train", lock=("train_d_model", "train_lr"),
                               hide=("train_seed", "train_epochs"), say=say), KEY)
    student = Student(browser, board_server)
    try:
        student.goto(f"train?train_block=3&lesson={token}")
        student.no_exception()
        page = student.page
        assert page.get_by_text("Change only the block size. <b>Which</b> value").count() == 1
        assert page.locator("b", has_text="Which").count() == 0  # the teacher's text is text
        page.get_by_text(re.compile("Settings for the next run")).click()  # unfold the settings
        student.idle()
        assert not page.locator(".st-key-train_seed").is_visible()
        assert not page.locator(".st-key-train_epochs").is_visible()
        locked = page.locator(".st-key-train_d_model")
        assert locked.is_visible()
        assert locked.evaluate("e => getComputedStyle(e).pointerEvents") == "none"
        assert page.locator(".st-key-train_block").evaluate(
            "e => getComputedStyle(e).pointerEvents") != "none"
        assert "lesson=" in page.url and "train_block=3" in page.url
        student.screenshot("lesson-link-train")
        toggle = page.get_by_text("Show all controls")
        toggle.click()
        student.idle()
        settings = page.locator("[data-testid='stExpander']", has_text="Settings for the next run")
        if not page.locator(".st-key-train_block").is_visible():  # folded by the rerun
            page.get_by_text(re.compile("Settings for the next run")).click()
            student.idle()
        assert settings.count() == 1
        assert page.locator(".st-key-train_seed").is_visible()
        assert page.locator(".st-key-train_d_model").evaluate(
            "e => getComputedStyle(e).pointerEvents") != "none"

        # the same link, changed by hand: the normal page and a notice
        student.goto(f"train?lesson={token[:-4]}AAAA")
        assert page.get_by_text(re.compile("not made by this server's teacher")).count()
        assert not page.get_by_text("Show all controls").count()
        assert not student.dialogs and not student.errors
    finally:
        student.close()


def test_a_posted_run_survives_a_server_restart(browser, tmp_path, monkeypatch):
    """SQLite: post on one server, stop it, start another on the same file: the run is there."""
    url = f"sqlite:///{tmp_path / 'board.sqlite'}"
    monkeypatch.setenv("MINILLM_DATABASE_URL", url)
    monkeypatch.setenv("MINILLM_TEACHER_KEY", KEY)
    from minillm.store import TeacherBoard, open_store

    board = open_store(url)
    TeacherBoard(board).create_class("restart-test")
    board.close()
    with running_server("streamlit-server-restart-1.log") as first:
        student = Student(browser, first)
        try:
            student.goto("train?class=restart-test")
            student.join("Ada")
            student.train()
            student.wait_done()
            student.page.get_by_role("button", name=re.compile("Post this run")).click()
            student.page.get_by_text(re.compile(r"Posted to the board of restart-test as run #1")
                                     ).wait_for(timeout=30_000)
        finally:
            student.close()
    with running_server("streamlit-server-restart-2.log") as second:  # a new process
        viewer = Student(browser, second)
        try:
            viewer.goto("class_board?class=restart-test")
            viewer.page.get_by_text(re.compile(r"Ada posted run #1")).wait_for(timeout=30_000)
            viewer.no_exception()
        finally:
            viewer.close()
