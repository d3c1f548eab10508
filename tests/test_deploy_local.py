"""The school setup (deploy/) on this machine without Docker: PostgreSQL, three `streamlit run`
replicas and nginx with sticky sessions, on loopback (deploy/local_cluster.py).

- nginx spreads new browsers over the replicas and keeps each browser on its own (a cookie);
- in real browsers, students on different replicas post to one class, and a third replica's
  board shows both posts (one PostgreSQL);
- a reload stays on the same replica and gets the model back;
- a websocket client (bench/ws_driver.py) carries nginx's cookie: its page and its websocket
  reach the same server; when that replica dies the websocket drops, and a reload with the
  same cookie lands on the replica's backup, not on a 502 (last: it kills a replica).

Without PostgreSQL or nginx installed this is skipped with the reason, except under CI=true.
"""

from __future__ import annotations

import re
import sys
import urllib.request
from pathlib import Path

import pytest

from conftest import VIEWPORT, artifacts_dir, skip_or_fail

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "deploy"))

import local_cluster  # noqa: E402
import render_nginx  # noqa: E402

CODE = "school-test"
KEY = "deploy-test-teacher-key"


@pytest.fixture(scope="module")
def cluster():
    problem = local_cluster.missing()
    if problem:
        skip_or_fail(problem)
    # MINILLM_WORKERS=0: three replicas with worker pools would be nine processes on 2 cores
    running = local_cluster.LocalCluster(3, KEY, env={"MINILLM_WORKERS": "0"})
    with running:
        from minillm.store import TeacherBoard, open_store

        board = open_store(running.database_url)
        TeacherBoard(board).create_class(CODE)
        board.close()
        yield running
    running.cleanup()


def replica_of(url: str, route: str | None = None) -> str:
    headers = {"Cookie": f"minillm_route={route}"} if route else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as answer:
        cookies = answer.headers.get_all("Set-Cookie") or []
        assert any(c.startswith(f"minillm_route={answer.headers['X-MiniLLM-Replica']};")
                   for c in cookies), cookies
        return answer.headers["X-MiniLLM-Replica"]


def test_nginx_spreads_new_browsers_and_keeps_each_on_its_replica(cluster):
    health = f"{cluster.url}/_stcore/health"
    assert {replica_of(health) for _ in range(40)} == {"minillm_r1", "minillm_r2", "minillm_r3"}
    for route in ("minillm_r1", "minillm_r2", "minillm_r3"):
        assert {replica_of(health, route) for _ in range(8)} == {route}
    assert replica_of(health, "minillm_r9") in {"minillm_r1", "minillm_r2", "minillm_r3"}


class Tab:
    def __init__(self, browser, cluster, route: str):
        self.context = browser.new_context(viewport=VIEWPORT)
        self.context.add_cookies([{"name": "minillm_route", "value": route, "url": cluster.url}])
        self.page = self.context.new_page()
        self.base, self.route = cluster.url, route
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def goto(self, path: str) -> str:
        response = self.page.goto(f"{self.base}/{path}")
        self.idle()
        return response.headers.get("x-minillm-replica", "")

    def idle(self):
        self.page.wait_for_selector(
            "[data-testid='stApp'][data-test-script-state='notRunning']", state="attached",
            timeout=90_000)
        self.page.wait_for_timeout(500)
        assert not self.page.locator("[data-testid='stException']").count()

    def join_train_post(self, nickname: str) -> None:
        assert self.goto(f"train?class={CODE}") == self.route
        sidebar = self.page.locator("[data-testid='stSidebar']")
        sidebar.get_by_test_id("stTextInputField").and_(
            sidebar.get_by_label(re.compile("Your nickname on the board"))).fill(nickname)
        sidebar.get_by_role("button", name="Join the class").click()
        self.page.get_by_text(re.compile("you are", re.I)).first.wait_for(timeout=60_000)
        self.idle()
        self.page.get_by_role("button", name="Train", exact=True).click()
        self.page.locator("[data-testid='stAlertContentSuccess']",
                          has_text="Training done:").wait_for(timeout=180_000)
        self.page.get_by_role("button", name=re.compile("Post this run")).click()
        self.page.get_by_text(re.compile(r"Posted to the board of school-test as run #\d+")
                              ).wait_for(timeout=60_000)


@pytest.mark.browser
def test_students_on_different_replicas_share_one_board(browser, cluster):
    ada = Tab(browser, cluster, "minillm_r1")
    bo = Tab(browser, cluster, "minillm_r2")
    cy = Tab(browser, cluster, "minillm_r3")
    try:
        ada.join_train_post("Ada")
        bo.join_train_post("Bo")
        assert cy.goto(f"class_board?class={CODE}") == "minillm_r3"
        for name in ("Ada", "Bo"):
            cy.page.get_by_text(re.compile(rf"{name} posted run #\d")).wait_for(timeout=30_000)
        cy.page.wait_for_timeout(1000)
        folder = artifacts_dir() / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        cy.page.screenshot(path=str(folder / "deploy-board-from-replica-3.png"), full_page=True)

        # a reload: the same replica, and the model is still there
        assert ada.goto("generate") == "minillm_r1"
        ada.page.reload()
        ada.idle()
        assert ada.page.get_by_text(re.compile(r"trained 300 of 300 epochs")).count()
        assert not (ada.errors or bo.errors or cy.errors)

        sizes = [round(local_cluster.rss_mb(pid)) for pid in cluster.replica_pids()]
        (artifacts_dir() / "deploy-local-rss.txt").write_text(
            "resident memory of replicas 1-3 (MB) after one student each: "
            f"{sizes}\n")
        print("replica RSS (MB):", sizes)
    finally:
        for tab in (ada, bo, cy):
            tab.context.close()


def test_each_replica_has_the_next_one_as_its_only_backup():
    conf = render_nginx.render(["a:1", "b:2", "c:3"], "80", "/tmp")
    assert "upstream minillm_r1 { server a:1; server b:2 backup; }" in conf
    assert "upstream minillm_r2 { server b:2; server c:3 backup; }" in conf
    assert "upstream minillm_r3 { server c:3; server a:1 backup; }" in conf
    assert "add_header X-MiniLLM-Upstream $upstream_addr always;" in conf
    alone = render_nginx.render(["a:1"], "80", "/tmp")
    assert "upstream minillm_r1 { server a:1; }" in alone  # nowhere else to go
    # the Compose file's configuration is this template's, rendered
    compose = (ROOT / "deploy" / "nginx.compose.conf").read_text()
    assert compose == render_nginx.render(["app1:8501", "app2:8501", "app3:8501"], "80", "/tmp")


def test_a_websocket_student_is_sticky_and_a_dead_replicas_student_reloads_elsewhere(cluster):
    """Kills replica 3: keep this test last in the module."""
    import asyncio
    import concurrent.futures

    sys.path.insert(0, str(ROOT / "bench"))
    import ws_driver

    third, first = cluster.replica_address(3), cluster.replica_address(1)

    async def scenario():
        cookies = {"minillm_route": "minillm_r3"}
        student = ws_driver.WsStudent(cluster.url, "s", cookies=cookies)
        await student.open("train", query=f"class={CODE}", load_page=True)
        seen = {"page": student.page_upstream, "ws": student.ws_upstream,
                "train": bool(student.button("Train"))}
        await asyncio.to_thread(cluster.kill_replica, 3)
        await student._wait(lambda: bool(student.closed_reason), 30)
        seen["dropped"] = student.dropped
        await student.close()
        again = ws_driver.WsStudent(cluster.url, "s again", cookies=cookies)
        await again.open("train", query=f"class={CODE}", load_page=True)
        seen.update(after_page=again.page_upstream, after_ws=again.ws_upstream,
                    after_train=bool(again.button("Train")), cookie=dict(cookies),
                    exceptions=student.exceptions + again.exceptions)
        await again.close()
        return seen

    # its own thread: a browser test's Playwright may keep an event loop running in this one
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        seen = pool.submit(asyncio.run, scenario()).result(timeout=180)
    assert (seen["page"], seen["ws"], seen["train"]) == (third, third, True)
    assert seen["dropped"]
    assert (seen["after_page"], seen["after_ws"], seen["after_train"]) == (first, first, True)
    assert seen["cookie"] == {"minillm_route": "minillm_r3"}  # it goes home once r3 is back
    assert seen["exceptions"] == []
