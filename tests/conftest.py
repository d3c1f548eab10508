"""Shared test setup: AppTest helpers for the pages, and a real browser on a real server.

AppTest (streamlit 1.67), what we rely on:

- ``AppTest.from_file`` resolves a *relative* path against the calling test file, so
  the helpers below always pass an absolute path under ``ROOT``. The default timeout
  is 3 s; ours is 60 s (the first run imports torch).
- ``app_test("pages/xxx.py")`` runs one page file as if it were the whole app. That
  page becomes the main script, so ``st.page_link("pages/other.py")`` resolves against
  ``pages/`` and finds nothing: pages must tolerate that (Home shows plain text).
- ``run_app()`` runs ``app.py`` itself: ``st.navigation`` registers every page and
  runs the default one (Home). ``run_app("pages/train.py")`` then calls
  ``at.switch_page("pages/train.py").run()``. In 1.67 ``switch_page`` matches the
  file against the pages the *previous run* registered (so ``url_path`` may differ
  from the filename), which is why the app must have run once before switching; a
  file that exists but is not registered raises ``ValueError`` ("Could not find a
  navigation page"). The app's shared sidebar and session state carry over, as in
  a browser. Use this for pages that read state set by other pages or app.py.
- ``st.cache_resource`` (and ``st.cache_data``) survive between AppTest instances
  in one process; the autouse fixture below clears both before every test.
- ``run_every`` fragments never fire under AppTest; drive them in the browser.
- After every ``.run()``: ``assert not at.exception``.

Browser fixtures (Playwright, Debian's ``/usr/bin/chromium``, never a download):

- ``streamlit_server`` (session): starts ``streamlit run app.py`` on a free port from
  ROOT, waits for ``/_stcore/health`` == "ok", yields the base URL
  (``"http://127.0.0.1:PORT"``), kills the server's process group at the end.
  Its log is written to ``$MINILLM_ARTIFACTS/streamlit-server.log``.
- ``browser`` (session): a headless Chromium ``Browser``.
- ``browser_page`` (function): an ``AppPage`` -- a fresh tab (own browser context, so
  its own Streamlit session) on the running app, with:
  ``.page`` (the Playwright ``Page``), ``.base_url``, ``.goto(url_path)`` (open a page
  by its url_path, "" for Home, and wait until the script finished),
  ``.wait_until_idle()``, ``.assert_no_exception()``, ``.screenshot(name)`` (full page,
  into ``$MINILLM_ARTIFACTS/screenshots/``), and what the tab saw: ``.console_errors``,
  ``.page_errors`` (JavaScript exceptions) and ``.external_requests`` (anything not
  served by the local app: the app must work offline).
  Any JavaScript ``pageerror`` fails the test at teardown.
  ``$MINILLM_ARTIFACTS`` defaults to ``ROOT/artifacts`` (gitignored).

Mark browser tests ``@pytest.mark.browser``. Without Chromium or Playwright they are
skipped with a reason, except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402  (after the sys.path insert, like every test)
from streamlit.testing.v1 import AppTest  # noqa: E402

APP_TIMEOUT = 60  # seconds per AppTest run; the first run imports torch
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}  # a common projector resolution
SERVER_START_TIMEOUT = 90  # seconds until /_stcore/health answers
SCRIPT_RUN_TIMEOUT = 60_000  # ms for one page's script run in the browser
SETTLE_MS = 500  # let charts and fonts paint after the script finished
MAX_SCREENSHOT_HEIGHT = 12_000  # px; a taller page is cut there
LOCAL_URL_PREFIXES = ("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "blob:", "about:")


# ---------------------------------------------------------------------------
# AppTest
# ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def clear_streamlit_caches():
    """cache_data and cache_resource outlive an AppTest instance: start every test clean."""
    st.cache_data.clear()
    st.cache_resource.clear()
    yield


@pytest.fixture
def float64():
    """Torch's default dtype float64 for one test (gradient checks), float32 again after."""
    import torch  # here, not at the top: most tests never need torch

    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def app_test(page_relpath: str, **kw) -> AppTest:
    """An AppTest of one script under ROOT (not yet run), e.g. ``app_test("pages/home.py")``.

    Keyword arguments go to ``AppTest.from_file`` (``default_timeout`` is 60 s unless given).
    """
    kw.setdefault("default_timeout", APP_TIMEOUT)
    return AppTest.from_file(str(ROOT / page_relpath), **kw)


def run_app(page_relpath: str | None = None, **kw) -> AppTest:
    """Run the whole app (app.py); then, if given, switch to ``page_relpath`` and run again.

    Returns the AppTest after its last run; check ``at.exception`` yourself.
    """
    at = app_test("app.py", **kw).run()
    if page_relpath is not None and not at.exception:
        at.switch_page(page_relpath).run()
    return at


def trained_experiment(**settings):
    """An `Experiment` with these `TrainSettings` (the notebook's for the rest), trained."""
    from minillm.experiment import Experiment, TrainSettings

    experiment = Experiment(TrainSettings(**settings))
    experiment.trainer.run()
    return experiment


def page_with(page_relpath: str, experiment) -> AppTest:
    """A page run once in a session that already holds `experiment` (as after Train)."""
    at = app_test(page_relpath)
    at.session_state["experiment"] = experiment
    at.run()
    assert not at.exception, at.exception
    return at


# ---------------------------------------------------------------------------
# Browser
# ---------------------------------------------------------------------------


def artifacts_dir() -> Path:
    """Where screenshots and logs go: $MINILLM_ARTIFACTS, else ROOT/artifacts."""
    path = Path(os.environ.get("MINILLM_ARTIFACTS") or ROOT / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def skip_or_fail(reason: str) -> None:
    """Skip outside CI; under CI=true a missing prerequisite is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the browser test must run)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_health(base_url: str, server: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(
                f"streamlit exited with code {server.returncode} before answering; "
                f"log:\n{log_path.read_text(errors='replace')}"
            )
        try:
            with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=2) as response:
                if response.read().decode().strip() == "ok":
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(
        f"/_stcore/health did not answer 'ok' within {SERVER_START_TIMEOUT} s; "
        f"log:\n{log_path.read_text(errors='replace')}"
    )


def stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM the whole group (streamlit may start children), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


@contextlib.contextmanager
def running_server(log_name: str = "streamlit-server.log"):
    """``streamlit run app.py`` on a free port; yields the base URL, e.g. http://127.0.0.1:8765."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = artifacts_dir() / log_name
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.headless", "true",
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
    ]
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,  # own process group
        )
    try:
        wait_for_health(base_url, server, log_path)
        yield base_url
    finally:
        stop_process_group(server)


@pytest.fixture(scope="session")
def streamlit_server():
    """One server for the whole test session (see `running_server`)."""
    with running_server() as base_url:
        yield base_url


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright (no browser download)."""
    if not CHROMIUM.exists():
        skip_or_fail(f"{CHROMIUM} is missing (Debian: apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        skip_or_fail(f"playwright is not importable: {error}")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class AppPage:
    """One browser tab on the running app, plus what its JavaScript console said."""

    page: object  # playwright.sync_api.Page
    base_url: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)  # the app must work offline

    def goto(self, url_path: str = "") -> None:
        """Open a page by its url_path ("" is Home) and wait until its script has finished."""
        self.page.goto(f"{self.base_url}/{url_path.lstrip('/')}")
        self.wait_until_idle()

    def wait_until_idle(self, timeout_ms: int = SCRIPT_RUN_TIMEOUT) -> None:
        """Wait until Streamlit reports no script running, then let the page paint.

        A fragment that reruns on a timer never settles this way: wait for an
        explicit done marker from the page instead.
        """
        self.page.wait_for_selector(
            "[data-testid='stApp'][data-test-script-state='notRunning']",
            state="attached", timeout=timeout_ms,
        )
        self.page.wait_for_timeout(SETTLE_MS)

    def assert_no_exception(self) -> None:
        exceptions = self.page.locator("[data-testid='stException']")
        if exceptions.count():
            raise AssertionError(
                f"{self.page.url} shows {exceptions.count()} exception(s):\n"
                + "\n---\n".join(exceptions.all_inner_texts())
            )

    def screenshot(self, name: str) -> Path:
        """A full-page PNG in $MINILLM_ARTIFACTS/screenshots/<name>.png; returns its path.

        Streamlit scrolls inside ``stMain``, not the document, so Playwright's
        ``full_page`` alone would stop at the viewport: the viewport is stretched to
        the content's height for the shot, then put back.
        """
        folder = artifacts_dir() / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        viewport = self.page.viewport_size
        content_height = self.page.evaluate(
            "() => Math.max(document.documentElement.scrollHeight,"
            " document.querySelector(\"[data-testid='stMain']\")?.scrollHeight || 0)"
        )
        if content_height > viewport["height"]:
            self.page.set_viewport_size(
                {"width": viewport["width"], "height": min(content_height, MAX_SCREENSHOT_HEIGHT)}
            )
            self.page.wait_for_timeout(SETTLE_MS)
        try:
            self.page.screenshot(path=str(path), full_page=True)
        finally:
            self.page.set_viewport_size(viewport)
        return path


@pytest.fixture
def browser_page(browser, streamlit_server):
    """A fresh tab (its own Streamlit session) on the running app; see ``AppPage``."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    app_page = AppPage(page=page, base_url=streamlit_server)
    page.on("console", lambda message: message.type == "error"
            and app_page.console_errors.append(f"{page.url}: {message.text}"))
    page.on("pageerror", lambda error: app_page.page_errors.append(f"{page.url}: {error}"))
    page.on("request", lambda request: request.url.startswith(LOCAL_URL_PREFIXES)
            or app_page.external_requests.append(f"{page.url}: {request.url}"))
    try:
        yield app_page
    finally:
        context.close()
        if app_page.console_errors:
            log = artifacts_dir() / "browser-console-errors.log"
            with open(log, "a") as out:
                out.write("\n".join(app_page.console_errors) + "\n")
            print("browser console errors:\n" + "\n".join(app_page.console_errors))
    if app_page.page_errors:
        pytest.fail("JavaScript errors in the page:\n" + "\n".join(app_page.page_errors))
