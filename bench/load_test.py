"""Load test: thirty students on one server, each trains the default model and generates once.

    python bench/load_test.py [--driver ws|browser] [--sessions 30] [--port N] [--settle 180]
                              [--browsers 1] [--option runner.postScriptGC=false ...]
    python bench/load_test.py --abuser [--sessions 30] [--abuser-wait 180]
    python bench/load_test.py --slots 1 [--students 30] [--rounds 2]
    python bench/load_test.py --replicas 3 [--students 90] [--kill 2] [--kill-after 0.33]
                              [--workers N] [--keep-logs]

Two drivers play the students. ``--driver ws`` (the default) speaks Streamlit's own
websocket protocol (``bench/ws_driver.py``: what the browser's JavaScript sends and keeps,
fragment timers included), so thirty students cost the machine ~2 CPU-s and the numbers are
the server's. ``--driver browser`` drives real Chromium tabs (Playwright), which also checks
the JavaScript side, but on this 2-core machine thirty tabs take most of the CPU the server
needs (in a class they run on the students' laptops). The flow below is the same for both.

What it does, in order (everything on 127.0.0.1, every wait bounded):

1. Starts ``streamlit run app.py --server.headless true --server.address 127.0.0.1
   --server.port <port>`` from the repo root in its own process group (killed at the end) and
   waits for ``/_stcore/health``. Its log goes to ``$MINILLM_ARTIFACTS/load-test-server.log``.
2. Baseline: ONE warm-up session does the whole student flow below (train once, generate once),
   its browser context is closed, and after ``BASELINE_WAIT`` seconds the median server RSS
   over the last ``BASELINE_WINDOW`` seconds is the *one-session baseline*. (So torch, the
   pages and the caches are loaded, and one finished session's state is held, as Streamlit
   keeps a disconnected session for ``server.disconnectedSessionTTL`` seconds.)
3. N sessions at once: Playwright browser contexts on Debian's ``/usr/bin/chromium`` (one
   browser by default, ``--browsers K`` spreads the contexts over K). Each opens the Train page
   (``/train``; ``OPENING_AT_ONCE`` tabs load at a time, untimed: thirty tabs parsing the
   app's JavaScript at once on two cores time out in the browser, which says nothing about
   the server) and waits until its script finished; when all are ready every session clicks
   **Train** at the same moment (the teacher says "go"), waits for the done marker
   ``Training done: ...`` (time from click to marker = time to a trained model), opens
   Generate through the sidebar link (same session), clicks **Another sample** (a new
   generation, seed 42 -> 43) and checks the generated text appears; no
   ``[data-testid='stException']`` on either page.
4. Closes the contexts and the browser, then samples the server for ``--settle`` seconds;
   "RSS after settle" is the median of its last ``BASELINE_WINDOW`` seconds.

A sampler thread reads the server's RSS (VmRSS of every process in its process group, from
/proc: psutil is not a dependency) and its thread count (/proc/<pid>/status Threads) every
0.5 s throughout. At the end it prints the numbers, whether each goal of issue 5 holds
(N/N completed, 0 exceptions, p95 < 30 s, RSS after settle within 20% of the baseline) and a
one-line summary. It also prints the CPU seconds the server, the browsers and everything else
on the machine used from the Train clicks on: the browsers share the server's two cores here
(in a class they run on the students' laptops), and so does anyone else's work, so read the
times against those numbers. It is a benchmark, not a test: the exit code is 0 whatever the
numbers, and 2 only when the harness itself broke (no server, no browser).

Every finished student's page is read for its "Final training loss" metric (4 decimals,
as shown): with per-run seeding all of them must show the notebook's 0.3845, and the report
says how many did (``exactly 0.3845: N/30``).

``--abuser``: a class that one student cannot break. On one server, after the warm-up: (a) 29
default students alone (the "without" figure); (b) the 29 and one abuser, who at the go
chooses "Paste your own sentences", pastes a seeded text at the page's limits
(`ws_driver.abuser_corpus`: 50,000 characters, 5,000 different words), sets block 16,
d_model 128, 16 heads, 2,000 epochs, loss on every position and the causal mask through the
widgets (word tokenizer, the default) and presses Train if it can; (c) the same, but after
the refusal the abuser does what it advises ("To fit, ...") and presses Train: the largest
run the budget still accepts; (d) the 29 alone again (how much the figure moves between two
runs of one phase). The abuser's run is waited for at most ``--abuser-wait`` s from its
click; then it leaves (its timers stop, so its run stops). Goals for (b) and (c): 29/29
completed, p95 at most 2x the p95 of (a), server RSS under 2 GB, the abuser gets a clear
message or a run that finishes. The last line: ``SUMMARY abuser: 29/29 completed, p95 N.N s
vs N.N s without, peak RSS N MB, abuser: <what its page showed>`` for (b), after the same
line for (c).

``--slots N`` (issue 13): the old way against the worker pool in one run. One server with
N training slots in its own process (``MINILLM_WORKERS=0 MINILLM_TRAINING_SLOTS=N``), then one
with the app's defaults (a worker pool, one process per core); on each a warm-up student,
then ``--students`` default students at once (train, generate). Prints both p95 times to a
trained model (and in server CPU-seconds), each student's time sorted, and whether the
pool's p95 is at most half the single-slot one. ``--rounds 2`` runs A B B A and counts each
kind's larger p95.

``--replicas N`` (issue 13): the school setup of deploy/ on this machine
(``deploy/local_cluster.py``: Debian's PostgreSQL, N ``streamlit run`` replicas, nginx with
sticky sessions). After a warm-up student on each replica (its route cookie chooses it),
``--students`` students (30 per replica by default) each load ``/train?class=bench-class``
through nginx (nginx draws their replica and sets its cookie; the websocket carries it, and
page and websocket must reach the same server), join the class with a nickname, then all
train the default model together and post it to the board. Once ``--kill-after`` of them have
posted, replica ``--kill`` gets SIGKILL (server and workers): its students' websockets drop
(recorded as "told to reload"), they load the page again with the same cookie (nginx sends
them to that replica's backup), join again (the board keeps their old nickname under the dead
session, so they take "NAME 2") and, if their run was not posted yet, train and post again.
The board's rows are read from PostgreSQL 2 s after the kill and at the end: "lost after kill"
counts rows of then, or posts a page had confirmed, missing at the end. Every student stays on
its page until all have posted (a class keeps its tabs open). Prints each replica's peak
memory, the figures and goals, and ends with ``SUMMARY replicas=N students=M: ...``.

``--option section.name=value`` (repeatable) adds a streamlit flag to the server command, to
compare a setting against .streamlit/config.toml without editing it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

# The websocket student's helpers (one copy for both drivers).
from ws_driver import Barrier, fmt_s, percentile  # noqa: E402

# The browser test's settings and server helpers, so both drive Chromium the same way.
from conftest import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    LOCAL_URL_PREFIXES,
    VIEWPORT,
    artifacts_dir,
    free_port,
    stop_process_group,
    wait_for_health,
)

SAMPLE_EVERY = 0.5  # s between two RSS / thread samples
BASELINE_WAIT = 10.0  # s after the warm-up session closed before the baseline is read
BASELINE_WINDOW = 5.0  # s: the baseline is the median RSS over the last this many seconds
WINDOW_SAMPLES = int(BASELINE_WINDOW / SAMPLE_EVERY)
PAGE_LOAD_TIMEOUT = 120_000  # ms for a page to open and its script to finish
TRAIN_TIMEOUT = 300_000  # ms from the Train click to the done marker
GENERATE_TIMEOUT = 120_000  # ms for the Generate page to show the generated text
CLICK_TIMEOUT = 120_000  # ms for a button or link to be clickable (a starved browser is slow)
READY_TIMEOUT = 600.0  # s for all sessions to have the Train page open
OPENING_AT_ONCE = 4  # tabs loading the app at the same moment (not timed; training is)
SESSIONS_DEADLINE = 900.0  # s from the Train clicks to the end of the concurrent phase

IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
EXCEPTION = "[data-testid='stException']"
DONE_MARKER = "Training done:"  # pages/train.py: st.success(f"Training done: ...")
WAITING_MARKER = "Waiting for a free slot"  # pages/train.py, when no training slot is free
NO_MODEL_MARKER = "There is no trained model in this session"  # pages/generate.py
OUTPUT = ".mll-out"  # minillm/charts/generate.py: the generated text
SEED_INPUT = "[data-testid='stNumberInput'] input"  # pages/generate.py: its only number input
FINAL_LOSS = "Final training loss"  # ui/train_widgets.py: show_summary's first metric
METRIC = "[data-testid='stMetric']"
METRIC_VALUE = "[data-testid='stMetricValue']"
NOTEBOOK_LOSS = "0.3845"  # README: the notebook's final loss, 300 epochs, seed 42
GOAL_P95 = 30.0  # s
GOAL_RSS_RATIO = 1.20


# ---------------------------------------------------------------------------
# The server and its memory
# ---------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def group_pids(pgid: int) -> list[int]:
    """Every process in the server's process group (streamlit and any children)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid:  # fields after "(comm)": state ppid pgrp ...
                    pids.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return pids


def group_cpu(pgid: int) -> float:
    """CPU seconds of the server's whole process group: every process in it (the server and
    its training workers, ``minillm.workers``), with the children each has reaped."""
    hz, total = os.sysconf("SC_CLK_TCK"), 0
    for pid in group_pids(pgid) or [pgid]:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / hz


def process_cpu(pid: int) -> float:
    """CPU seconds of one process alone (the server's own: its pages and the pool's round
    trips, without the workers that train)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(v) for v in fields[11:13]) / os.sysconf("SC_CLK_TCK")  # utime stime


def group_pss_mb(pgid: int) -> float:
    """The process group's proportional set size (MB): shared pages counted once, so a
    server with forked workers is not counted twice, as summing their RSS does."""
    kb = 0
    for pid in group_pids(pgid) or [pgid]:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                kb += next((int(line.split()[1]) for line in f if line.startswith("Pss:")), 0)
        except OSError:
            continue
    return kb / 1024


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - idle) / hz, sum(ticks) / hz


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


@dataclass
class Sample:
    t: float  # monotonic
    phase: str
    rss_mb: float
    threads: int
    cpu: float = 0.0  # CPU seconds the server's process group has used so far
    pss_mb: float = 0.0  # the group's PSS (see group_pss_mb)


def cpu_at(samples: list[Sample], t: float) -> float | None:
    """The server's CPU seconds at monotonic time `t`, interpolated between two samples."""
    before = [s for s in samples if s.t <= t]
    after = [s for s in samples if s.t >= t]
    if not before or not after:
        return None
    a, b = before[-1], after[0]
    return a.cpu if b.t == a.t else a.cpu + (b.cpu - a.cpu) * (t - a.t) / (b.t - a.t)


def server_cpu_times(samples: list[Sample], go: float | None, times: list[float]) -> list[float]:
    """For each click -> done time (s after the go), the server CPU seconds spent meanwhile:
    a figure that does not grow when other work on the machine takes the server's cores."""
    start = cpu_at(samples, go) if go is not None else None
    if start is None:
        return []
    spent = [cpu_at(samples, go + t) for t in times]
    return [c - start for c in spent if c is not None]


class Sampler(threading.Thread):
    """RSS (MB, summed over the process group) and threads of the server every SAMPLE_EVERY s."""

    def __init__(self, pid: int, max_seconds: float):
        super().__init__(daemon=True)
        self.pid, self.max_seconds = pid, max_seconds
        self.phase = "start"
        self.samples: list[Sample] = []
        self.stop_event = threading.Event()

    def read(self) -> tuple[float, int]:
        rss_kb = threads = 0
        for pid in group_pids(self.pid) or [self.pid]:
            try:
                status = proc_status(pid)
            except OSError:
                continue
            rss_kb += int(status.get("VmRSS", "0 kB").split()[0])
            threads += int(status.get("Threads", "0"))
        return rss_kb / 1024, threads

    def run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self.stop_event.is_set() and time.monotonic() < deadline:
            rss, threads = self.read()
            if rss:
                self.samples.append(Sample(time.monotonic(), self.phase, rss, threads,
                                           group_cpu(self.pid), group_pss_mb(self.pid)))
            self.stop_event.wait(SAMPLE_EVERY)

    def phase_samples(self, *phases: str) -> list[Sample]:
        return [s for s in self.samples if s.phase in phases]


def start_server(port: int, log_path: Path, options: list[str] = (),
                 env: dict[str, str] | None = None) -> subprocess.Popen:
    """The README's command, on loopback, from the repo root, in its own process group.

    `options` ("section.name=value") are extra ``--section.name value`` flags, for comparing
    a setting against .streamlit/config.toml without editing it.
    """
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.headless", "true",
        "--server.address", "127.0.0.1",
        "--server.port", str(port),
    ]
    for option in options:
        name, _, value = option.partition("=")
        command += [f"--{name.strip()}", value.strip()]
    with open(log_path, "wb") as log:
        return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                env={**os.environ, **(env or {})})


# ---------------------------------------------------------------------------
# One student
# ---------------------------------------------------------------------------


@dataclass
class Session:
    index: int
    status: str = "not started"  # "completed" or "failed"
    reason: str = ""
    train_seconds: float | None = None  # Train click -> done marker
    waited_for_slot: bool = False  # saw "Waiting for a free slot"
    exceptions: int = 0  # stException elements seen
    generated: str = ""
    final_loss: str | None = None  # the "Final training loss" metric as shown, e.g. "0.3845"
    note: str = ""  # something odd that did not make the flow fail
    page_errors: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)

    def fail(self, reason: str) -> None:
        if self.status != "failed":
            self.status, self.reason = "failed", reason


async def wait_idle(page, timeout_ms: int) -> None:
    await page.wait_for_selector(IDLE, state="attached", timeout=timeout_ms)


async def count_exceptions(page, session: Session, where: str) -> None:
    exceptions = page.locator(EXCEPTION)
    n = await exceptions.count()
    if n:
        session.exceptions += n
        texts = await exceptions.all_inner_texts()
        text = " | ".join(t.strip().replace("\n", " ")[:200] for t in texts)
        session.fail(f"{n} exception(s) on {where}: {text}")


async def open_train_page(page, base_url: str, session: Session) -> bool:
    try:
        await page.goto(f"{base_url}/train", wait_until="domcontentloaded",
                        timeout=PAGE_LOAD_TIMEOUT)
        await wait_idle(page, PAGE_LOAD_TIMEOUT)
        await page.get_by_role("button", name=re.compile(r"Train$")).wait_for(
            state="visible", timeout=PAGE_LOAD_TIMEOUT)
    except Exception as error:  # noqa: BLE001 - any failure is this session's result
        session.fail(f"Train page did not open: {first_line(error)}")
        return False
    await count_exceptions(page, session, "Train page (before training)")
    return session.status != "failed"


async def train(page, session: Session) -> bool:
    """Click Train, wait for the done marker (or an exception); True when trained."""
    button = page.get_by_role("button", name=re.compile(r"Train$"))
    start = time.monotonic()
    try:
        await button.click(timeout=CLICK_TIMEOUT)
    except Exception as error:  # noqa: BLE001
        session.fail(f"could not click Train: {first_line(error)}")
        return False
    done = asyncio.ensure_future(page.get_by_text(DONE_MARKER).first.wait_for(
        state="visible", timeout=TRAIN_TIMEOUT))
    crashed = asyncio.ensure_future(page.locator(EXCEPTION).first.wait_for(
        state="attached", timeout=TRAIN_TIMEOUT))
    waiting = asyncio.ensure_future(page.get_by_text(WAITING_MARKER).first.wait_for(
        state="attached", timeout=TRAIN_TIMEOUT))
    try:
        await asyncio.wait({done, crashed}, return_when=asyncio.FIRST_COMPLETED,
                           timeout=TRAIN_TIMEOUT / 1000 + 5)
        elapsed = time.monotonic() - start
        session.waited_for_slot = waiting.done() and waiting.exception() is None
        if done.done() and done.exception() is None:
            session.train_seconds = elapsed
            session.final_loss = await final_loss(page)
        elif crashed.done() and crashed.exception() is None:
            session.fail(f"exception while training after {elapsed:.1f} s")
        else:
            error = done.exception() if done.done() else "no result"
            session.fail(f"no done marker after {elapsed:.1f} s ({await progress_text(page)}): "
                         f"{first_line(error)}")
    finally:
        for task in (done, crashed, waiting):
            task.cancel()
        await asyncio.gather(done, crashed, waiting, return_exceptions=True)
    await count_exceptions(page, session, "Train page (after training)")
    return session.train_seconds is not None and session.status != "failed"


async def generate_once(page, session: Session) -> None:
    """Generate through the sidebar link (same session), then one new sample."""
    step = "opening Generate from the sidebar"
    try:
        await page.locator("[data-testid='stSidebarNav'] a[href$='/generate']").click(
            timeout=CLICK_TIMEOUT)
        await page.wait_for_url(re.compile(r"/generate$"), timeout=GENERATE_TIMEOUT)
        step = "waiting for the generated text"
        output = page.locator(OUTPUT).first
        no_model = page.get_by_text(NO_MODEL_MARKER).first
        await output.or_(no_model).wait_for(state="visible", timeout=GENERATE_TIMEOUT)
        if await no_model.count():
            session.fail("Generate says there is no trained model (the session lost its model)")
            return
        step = "clicking Another sample"
        before = await page.locator(SEED_INPUT).first.input_value(timeout=GENERATE_TIMEOUT)
        await page.get_by_role("button", name=re.compile(r"Another sample$")).click(
            timeout=CLICK_TIMEOUT)
        step = "waiting for the new sample"
        # The click's callback moves the seed on; the rerun then redraws the text.
        await page.wait_for_function(
            "([selector, before]) => { const el = document.querySelector(selector);"
            " return el && el.value !== before; }",
            arg=[SEED_INPUT, before], timeout=GENERATE_TIMEOUT)
        await wait_idle(page, GENERATE_TIMEOUT)
        session.generated = (await output.inner_text(timeout=GENERATE_TIMEOUT)).strip()
        if not session.generated:
            session.fail("Generate showed no text")
    except Exception as error:  # noqa: BLE001
        session.fail(f"Generate failed while {step}: {first_line(error)}")
    await count_exceptions(page, session, "Generate page")


async def final_loss(page) -> str | None:
    """The "Final training loss" metric the finished run shows (4 decimals), or None."""
    metric = page.locator(METRIC).filter(has_text=FINAL_LOSS).locator(METRIC_VALUE).first
    try:
        await metric.wait_for(state="visible", timeout=CLICK_TIMEOUT)
        return (await metric.inner_text()).strip()
    except Exception:  # noqa: BLE001 - no metric: the count says so
        return None


async def progress_text(page) -> str:
    """What the Train page's progress bar says now, e.g. 'Epoch 300 of 300 · loss 0.3845'."""
    try:
        texts = await page.locator("[data-testid='stProgress']").all_inner_texts()
    except Exception as error:  # noqa: BLE001
        return f"progress unreadable: {first_line(error)}"
    return "progress: " + (" ".join(texts[0].split()) if texts else "none shown")


def first_line(error: object) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__


async def new_student_page(browser, base_url: str, session: Session):
    context = await browser.new_context(viewport=VIEWPORT)
    page = await context.new_page()
    page.on("pageerror", lambda error: session.page_errors.append(str(error)[:200]))
    page.on("request", lambda request: request.url.startswith(LOCAL_URL_PREFIXES)
            or session.external_requests.append(request.url))
    return context, page


async def student(browser, base_url: str, session: Session, ready: "Barrier",
                  opening: asyncio.Semaphore) -> None:
    """One student's whole flow; the result lands in `session`, nothing is raised.

    Opening the page is throttled (`opening`): thirty tabs parsing the app's JavaScript at
    once on two cores would time out in the browser, which says nothing about the server.
    Everything from the Train click on runs for all sessions at once.
    """
    context = page = None
    try:
        async with opening:
            context, page = await new_student_page(browser, base_url, session)
            opened = await open_train_page(page, base_url, session)
    except Exception as error:  # noqa: BLE001
        session.fail(f"no browser context: {first_line(error)}")
        opened = False
    finally:
        ready.arrive()
    try:
        if opened and await ready.wait():
            if await train(page, session):
                await generate_once(page, session)
        elif opened:
            session.fail("the other sessions were not ready in time")
        if session.status != "failed":
            session.status = "completed"
    except Exception as error:  # noqa: BLE001
        session.fail(f"harness error: {first_line(error)}")
    finally:
        if context is not None:
            try:
                await context.close()
            except Exception:  # noqa: BLE001
                pass


async def run_class(results: list, flow, on_load_start) -> dict:
    """Every student's `flow(result, barrier, opening)` at once: pages open a few at a time,
    then all click Train together (`on_load_start` is called at that moment). Returns the
    timings; a student still running at the deadline is marked failed."""
    info: dict = {}

    def go():
        info["go"] = time.monotonic()
        on_load_start()

    barrier = Barrier(len(results), READY_TIMEOUT, on_release=go)
    opening = asyncio.Semaphore(OPENING_AT_ONCE)
    started = time.monotonic()
    tasks = [asyncio.ensure_future(flow(i, result, barrier, opening))
             for i, result in enumerate(results)]
    finished, unfinished = await asyncio.wait(tasks, timeout=READY_TIMEOUT + SESSIONS_DEADLINE)
    for task in unfinished:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if result.status not in ("completed", "failed"):
            result.fail(f"still running at the {SESSIONS_DEADLINE:.0f} s deadline")
    info["open_seconds"] = info.get("go", time.monotonic()) - started
    info["load_seconds"] = time.monotonic() - info.get("go", started)
    if "go" not in info:  # nobody got as far as the Train click: measure from the start
        on_load_start()
    return info


async def drive(base_url: str, sessions: int, browsers: int, sampler: Sampler,
                on_load_start) -> tuple[Session, list[Session], dict]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launch = dict(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)

        # Warm-up: one student, alone; then the baseline.
        sampler.phase = "warmup"
        browser = await playwright.chromium.launch(**launch)
        warm = Session(index=0)
        await student(browser, base_url, warm, Barrier(1, READY_TIMEOUT), asyncio.Semaphore(1))
        await browser.close()
        sampler.phase = "baseline"
        await asyncio.sleep(BASELINE_WAIT)

        # The class: everyone opens Train, then everyone clicks Train at once ("go").
        sampler.phase = "load"
        pool = [await playwright.chromium.launch(**launch) for _ in range(browsers)]
        results = [Session(index=i + 1) for i in range(sessions)]

        async def flow(i, session, barrier, opening):
            await student(pool[i % browsers], base_url, session, barrier, opening)

        info = await run_class(results, flow, on_load_start)
        for browser in pool:
            await browser.close()
    return warm, results, info


def as_session(result) -> Session:
    """A websocket student's result as the browser driver's Session."""
    return Session(index=result.index, status=result.status, reason=result.reason,
                   train_seconds=result.train_seconds, waited_for_slot=result.waited_for_slot,
                   exceptions=result.exceptions, generated=result.generated,
                   final_loss=result.final_loss, note=result.note)


def exact_losses(results: list[Session]) -> tuple[int, str]:
    """How many finished at exactly the notebook's loss (as the page shows it, 4 decimals),
    and what the others showed ("0.3846 x2, none x1"), "" when all did."""
    exact = sum(s.final_loss == NOTEBOOK_LOSS for s in results)
    others = Counter(s.final_loss or "none" for s in results if s.final_loss != NOTEBOOK_LOSS)
    return exact, ", ".join(f"{v} x{n}" for v, n in sorted(others.items()))


async def drive_ws(base_url: str, sessions: int, sampler: Sampler,
                   on_load_start) -> tuple[Session, list[Session], dict]:
    """The same class as `drive`, each student a `ws_driver.WsStudent` instead of a tab."""
    import ws_driver

    sampler.phase = "warmup"
    warm = ws_driver.Result(index=0)
    warm_ready = Barrier(1, READY_TIMEOUT)
    await ws_driver.student_flow(base_url, warm, warm_ready, asyncio.Semaphore(1))
    sampler.phase = "baseline"
    await asyncio.sleep(BASELINE_WAIT)

    sampler.phase = "load"
    results = [ws_driver.Result(index=i + 1) for i in range(sessions)]

    async def flow(i, result, barrier, opening):
        await ws_driver.student_flow(base_url, result, barrier, opening)

    info = await run_class(results, flow, on_load_start)
    return as_session(warm), [as_session(r) for r in results], info


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def report(args, warm: Session, results: list[Session], info: dict, sampler: Sampler,
           baseline: float, load_before: str, load_after: str, cpu: dict) -> None:
    done = [s for s in results if s.status == "completed"]
    failed = [s for s in results if s.status != "completed"]
    times = [s.train_seconds for s in results if s.train_seconds is not None]
    exceptions = sum(s.exceptions for s in results)
    page_errors = sum(len(s.page_errors) for s in results)
    external = sum(len(s.external_requests) for s in results)
    p50, p95 = percentile(times, 50), percentile(times, 95)
    exact, other_losses = exact_losses(results)
    load = sampler.phase_samples("load")
    settle = sampler.phase_samples("settle")
    peak_rss = max((s.rss_mb for s in load), default=float("nan"))
    peak_pss = max((s.pss_mb for s in load), default=float("nan"))
    peak_threads = max((s.threads for s in load), default=0)
    closed_rss = settle[0].rss_mb if settle else float("nan")
    end = settle[-WINDOW_SAMPLES:] if settle else []
    after_rss = statistics.median(s.rss_mb for s in end) if end else float("nan")
    after_threads = end[-1].threads if end else 0
    ratio = after_rss / baseline if baseline else float("nan")

    print()
    driver = ("websocket clients (bench/ws_driver.py)" if args.driver == "ws"
              else f"Chromium tabs in {args.browsers} browser(s)")
    print(f"=== MiniLLM Lab load test: {args.sessions} sessions as {driver}, "
          f"settle {args.settle:.0f} s ===")
    print(f"machine: {os.cpu_count()} cores; load average before {load_before}, after {load_after}")
    if args.option:
        print(f"server options on top of .streamlit/config.toml: {' '.join(args.option)}")
    print(f"warm-up session: {warm.status}{' (' + warm.reason + ')' if warm.reason else ''}, "
          f"trained in {fmt_s(warm.train_seconds)}")
    print(f"baseline RSS: {baseline:.0f} MB (median over {BASELINE_WINDOW:.0f} s, "
          f"{BASELINE_WAIT:.0f} s after one warm-up session trained once, generated once and "
          f"closed)")
    print(f"sessions: {len(done)} completed, {len(failed)} failed; opening {args.sessions} pages "
          f"({OPENING_AT_ONCE} at a time) took {info.get('open_seconds', 0):.1f} s, from the "
          f"Train clicks to the last session closed {info.get('load_seconds', 0):.1f} s")
    others = cpu["machine_busy"] - cpu["server"] - cpu["browser"]
    who = "this driver" if args.driver == "ws" else "browsers + Playwright"
    print(f"CPU from the Train clicks on: server {cpu['server']:.1f} s, {who} "
          f"{cpu['browser']:.1f} s, everything else on the machine {max(0.0, others):.1f} s; "
          f"machine busy {cpu['machine_busy'] / max(cpu['machine_total'], 1e-9):.0%}")
    for s in failed:
        print(f"  session {s.index:2d} failed: {s.reason}")
    for s in results:
        if s.note:
            print(f"  session {s.index:2d} note: {s.note}")
    waited = sum(s.waited_for_slot for s in results)
    print(f"sessions that saw '{WAITING_MARKER}': {waited}")
    print(f"exceptions seen (stException): {exceptions}; JavaScript page errors: {page_errors}; "
          f"requests outside the server: {external}")
    print(f"time to a trained model (click -> done marker, {len(times)} sessions): "
          f"p50 {fmt_s(p50)}, p95 {fmt_s(p95)}, min {fmt_s(min(times, default=None))}, "
          f"max {fmt_s(max(times, default=None))}")
    cpu_times = server_cpu_times(list(sampler.samples), info.get("go"), times)
    print(f"server CPU spent from the Train clicks to each done marker: p50 "
          f"{fmt_s(percentile(cpu_times, 50))}, p95 {fmt_s(percentile(cpu_times, 95))} (not "
          f"stretched by other work on the machine)")
    print(f"exactly {NOTEBOOK_LOSS}: {exact}/{args.sessions}"
          + (f" (the others showed: {other_losses})" if other_losses else ""))
    print(f"peak RSS during the sessions: {peak_rss:.0f} MB (PSS {peak_pss:.0f} MB); peak "
          f"threads: {peak_threads}")
    print(f"RSS when the sessions had closed: {closed_rss:.0f} MB; after {args.settle:.0f} s "
          f"settle: {after_rss:.0f} MB ({ratio:.2f}x baseline); threads after settle: "
          f"{after_threads}")
    goals = [
        (f"{args.sessions}/{args.sessions} completed", len(done) == args.sessions),
        ("0 exceptions", exceptions == 0),
        (f"{args.sessions}/{args.sessions} exactly {NOTEBOOK_LOSS}", exact == args.sessions),
        (f"p95 < {GOAL_P95:.0f} s", p95 is not None and p95 < GOAL_P95),
        (f"RSS after settle within {GOAL_RSS_RATIO - 1:.0%} of baseline",
         after_rss <= baseline * GOAL_RSS_RATIO),
    ]
    print("goals:")
    for name, ok in goals:
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}")
    verdict = "ALL GOALS MET" if all(ok for _, ok in goals) else "GOALS NOT MET: " + ", ".join(
        name for name, ok in goals if not ok)
    print(f"SUMMARY: {len(done)}/{args.sessions} completed, {exceptions} exceptions, "
          f"exactly {NOTEBOOK_LOSS}: {exact}/{args.sessions}, "
          f"p50 {fmt_s(p50)}, p95 {fmt_s(p95)}, peak RSS {peak_rss:.0f} MB, "
          f"peak threads {peak_threads}, baseline {baseline:.0f} MB, "
          f"after settle {after_rss:.0f} MB ({ratio:.2f}x) -> {verdict}")


# ---------------------------------------------------------------------------
# --abuser: the class without, then with, one student who asks for the biggest run
# ---------------------------------------------------------------------------

GOAL_ABUSER_P95_RATIO = 2.0  # p95 with the abuser at most this times p95 without
GOAL_ABUSER_RSS_MB = 2048.0  # server RSS stays under this
PHASE_GAP = 3.0  # s between two phases (the closed sessions' sockets go away)


@dataclass
class Phase:
    name: str  # the sampler's phase
    title: str
    results: list[Session]  # the default students
    abuser: object | None  # ws_driver.AbuserResult, or None
    info: dict
    cpu: dict
    peak_rss: float
    cpu_times: list[float] = field(default_factory=list)  # server CPU-s from go to each done
    peak_pss: float = float("nan")

    @property
    def cpu_p95(self) -> float | None:
        return percentile(self.cpu_times, 95)

    @property
    def times(self) -> list[float]:
        return [s.train_seconds for s in self.results if s.train_seconds is not None]

    @property
    def completed(self) -> int:
        return sum(s.status == "completed" for s in self.results)

    @property
    def p95(self) -> float | None:
        return percentile(self.times, 95)


async def ws_phase(base_url: str, name: str, title: str, students: int, sampler: Sampler,
                   server_pid: int, abuser=None, text: str = "",
                   abuser_wait: float = 180.0) -> Phase:
    """`students` default students (ws_driver.student_flow) and maybe one `abuser`
    (ws_driver.abuser_flow), all opening Train, then all starting at the same moment."""
    import ws_driver

    sampler.phase = name
    results = [ws_driver.Result(index=i + 1) for i in range(students)]
    everyone = results + ([abuser] if abuser is not None else [])
    start: dict = {}

    def go():
        start.update(server=group_cpu(server_pid), own=process_cpu(server_pid),
                     machine=machine_cpu(), driver=time.process_time())
        print(f"[{title}] all {len(everyone)} sessions have the Train page open: go ...",
              flush=True)

    async def flow(i, result, barrier, opening):
        if result is abuser:
            await ws_driver.abuser_flow(base_url, result, barrier, opening, text, abuser_wait)
        else:
            await ws_driver.student_flow(base_url, result, barrier, opening)

    info = await run_class(everyone, flow, go)
    busy, total = machine_cpu()
    cpu = {"server": group_cpu(server_pid) - start["server"],
           "own": process_cpu(server_pid) - start["own"],
           "driver": time.process_time() - start["driver"],
           "machine_busy": busy - start["machine"][0],
           "machine_total": total - start["machine"][1]}
    peak = max((s.rss_mb for s in sampler.phase_samples(name)), default=float("nan"))
    peak_pss = max((s.pss_mb for s in sampler.phase_samples(name)), default=float("nan"))
    sessions = [as_session(r) for r in results]
    times = [s.train_seconds for s in sessions if s.train_seconds is not None]
    cpu_times = server_cpu_times(list(sampler.samples), info.get("go"), times)
    return Phase(name, title, sessions, abuser, info, cpu, peak, cpu_times, peak_pss)


async def drive_abuser(base_url: str, students: int, sampler: Sampler, server_pid: int,
                       abuser_wait: float):
    """Warm-up, then: the class alone; with the abuser asking for the largest run; with the
    abuser following the refusal's advice; the class alone again (how much the figures
    move between two runs of the same phase)."""
    import ws_driver

    sampler.phase = "warmup"
    warm = ws_driver.Result(index=0)
    await ws_driver.student_flow(base_url, warm, Barrier(1, READY_TIMEOUT), asyncio.Semaphore(1))
    sampler.phase = "baseline"
    await asyncio.sleep(BASELINE_WAIT)
    text = ws_driver.abuser_corpus()
    phases = []
    plan = [("without", f"{students} students, no abuser", None),
            ("largest", f"{students} students + the abuser (largest run)",
             ws_driver.AbuserResult(index=students + 1)),
            ("advised", f"{students} students + the abuser (follows the refusal's advice)",
             ws_driver.AbuserResult(index=students + 1, follow_advice=True)),
            ("again", f"{students} students, no abuser, again", None)]
    for name, title, abuser in plan:
        phases.append(await ws_phase(base_url, name, title, students, sampler, server_pid,
                                     abuser, text, abuser_wait))
        await asyncio.sleep(PHASE_GAP)
    return as_session(warm), phases, text


def budget_estimate(text: str, steps: list) -> str:
    """What minillm.budget estimated for the run those widget steps set up, in words: the run
    built as the page builds it (`Experiment` with the server's budgets, in this process)."""
    sys.path.insert(0, str(ROOT))
    from minillm.budget import Budgets
    from minillm.corpus import load_corpus
    from minillm.experiment import Experiment, TrainSettings

    values = dict(steps)
    lines = load_corpus(values.get("train_text", text)).lines
    settings = TrainSettings(
        lines, "your sentences", "word", int(values.get("train_block", 5)),
        int(values.get("train_d_model", 32)), int(values.get("train_heads", 2)),
        epochs=int(values.get("train_epochs", 300)),
        loss_on="every" if values.get("train_loss_on", "").startswith("every") else "last",
        causal=bool(values.get("train_causal", False)))
    budgets = Budgets.from_env()
    head = (f"block {settings.block_size}, d_model {settings.d_model}, {settings.n_heads} "
            f"heads, {settings.epochs} epochs, loss on {settings.loss_on}, causal "
            f"{'on' if settings.causal else 'off'}")
    try:
        exp = Experiment(settings, budgets=budgets)
    except ValueError as error:
        return f"{head}: refused here too ({str(error)[:80]}...)"
    cost = exp.cost
    return (f"{head}: {len(exp.dataset):,} windows, vocabulary {exp.dataset.vocab_size:,}; the "
            f"budget's estimate: {cost.epoch_seconds:.3f} s of CPU an epoch (allowed "
            f"{budgets.epoch_seconds:g}), {cost.run_seconds:.0f} s the run (allowed "
            f"{budgets.run_seconds:g}), one step {cost.step_bytes / 1e6:.0f} MB (allowed "
            f"{budgets.step_mb:g})")


def asked_epochs(steps: list) -> int:
    """The epochs those widget steps asked for (the page's default 300 when none)."""
    return int(dict(steps).get("train_epochs", 300))


def abuser_ok(abuser) -> bool:
    """A clear message (refused, Train off) or a run that finished while the bench waited."""
    return abuser is not None and abuser.status == "completed" and (
        abuser.outcome.startswith("refused") or abuser.outcome.startswith("trained"))


def report_abuser(args, warm: Session, phases: list[Phase], text: str, baseline: float,
                  load_before: str, load_after: str) -> None:
    print()
    print(f"=== MiniLLM Lab load test --abuser: {args.sessions - 1} students as websocket "
          f"clients (bench/ws_driver.py), then the same with one abuser ===")
    print(f"machine: {os.cpu_count()} cores; load average before {load_before}, after {load_after}")
    if args.option:
        print(f"server options on top of .streamlit/config.toml: {' '.join(args.option)}")
    print(f"warm-up session: {warm.status}{' (' + warm.reason + ')' if warm.reason else ''}, "
          f"trained in {fmt_s(warm.train_seconds)}; baseline RSS {baseline:.0f} MB")
    print(f"the abuser's corpus: {len(text):,} characters, {len(text.splitlines()):,} lines, "
          f"{len(set(text.split())):,} different words (seeded, ws_driver.abuser_corpus)")
    for phase in phases:
        times = phase.times
        exceptions = sum(s.exceptions for s in phase.results)
        exact, others = exact_losses(phase.results)
        n = len(phase.results)
        busy = phase.cpu["machine_busy"] / max(phase.cpu["machine_total"], 1e-9)
        rest = max(0.0, phase.cpu["machine_busy"] - phase.cpu["server"] - phase.cpu["driver"])
        print(f"--- {phase.title} ---")
        print(f"  {phase.completed}/{n} completed, {exceptions} exceptions, exactly "
              f"{NOTEBOOK_LOSS}: {exact}/{n}{' (others: ' + others + ')' if others else ''}; "
              f"saw '{WAITING_MARKER}': {sum(s.waited_for_slot for s in phase.results)}")
        print(f"  click -> done marker: p50 {fmt_s(percentile(times, 50))}, p95 "
              f"{fmt_s(percentile(times, 95))}, min {fmt_s(min(times, default=None))}, max "
              f"{fmt_s(max(times, default=None))}; from the go to the last session closed "
              f"{phase.info.get('load_seconds', 0):.1f} s")
        print(f"  server CPU spent from the go to each done marker: p50 "
              f"{fmt_s(percentile(phase.cpu_times, 50))}, p95 {fmt_s(phase.cpu_p95)} (the same "
              f"figure in CPU-seconds: other work on the machine does not stretch it)")
        print(f"  peak RSS {phase.peak_rss:.0f} MB (PSS {phase.peak_pss:.0f} MB); CPU from "
              f"the go: server "
              f"{phase.cpu['server']:.1f} s, this driver {phase.cpu['driver']:.1f} s, everything "
              f"else on the machine {rest:.1f} s; machine busy {busy:.0%}")
        for s in phase.results:
            if s.status != "completed":
                print(f"  session {s.index:2d} failed: {s.reason}")
            if s.note:
                print(f"  session {s.index:2d} note: {s.note}")
        a = phase.abuser
        if a is not None:
            print(f"  abuser: {a.outcome}")
            print(f"    its settings took {fmt_s(a.setup_seconds)} to set ({len(a.steps)} widget "
                  f"changes); its page said: {a.page_facts or 'nothing about the data'}")
            if a.refusal:
                print(f"    refusal in full: {a.refusal}")
            if a.advice_taken:
                print(f"    advice followed: {a.advice_taken}")
            if a.epochs_done and a.outcome.startswith("still training"):
                rate = a.epochs_done / args.abuser_wait
                total = asked_epochs(a.steps)
                print(f"    its pace: {a.epochs_done} epochs in {args.abuser_wait:.0f} s; all "
                      f"{total:,} would take {total / rate / 60:.0f} minutes at that pace")
            if a.steps:
                try:
                    print(f"    {budget_estimate(text, a.steps)}")
                except Exception as error:  # noqa: BLE001 - the estimate is context only
                    print(f"    (no budget estimate: {type(error).__name__}: {error})")
            if a.status != "completed":
                print(f"    failed: {a.reason}")
    without = phases[0]
    print(f"all phases: peak RSS {max(p.peak_rss for p in phases):.0f} MB, peak PSS "
          f"{max(p.peak_pss for p in phases):.0f} MB (RSS and PSS summed over the server's "
          f"process group: PSS counts pages its processes share once)")
    print("goals:")
    lines = []
    for phase in (p for p in phases if p.abuser is not None):
        n = len(phase.results)
        ratio_ok = (phase.p95 is not None and without.p95 is not None
                    and phase.p95 <= GOAL_ABUSER_P95_RATIO * without.p95)
        goals = [(f"{n}/{n} completed", phase.completed == n),
                 (f"p95 at most {GOAL_ABUSER_P95_RATIO:g}x without", ratio_ok),
                 (f"server RSS under {GOAL_ABUSER_RSS_MB:.0f} MB",
                  phase.peak_rss < GOAL_ABUSER_RSS_MB),
                 ("the abuser gets a clear message or a bounded run", abuser_ok(phase.abuser))]
        for goal, ok in goals:
            print(f"  [{'PASS' if ok else 'FAIL'}] {phase.name}: {goal}")
        ratios = [f"{phase.p95 / other.p95:.2f}x {other.name}" for other in phases
                  if other.abuser is None and phase.p95 and other.p95]
        cpu_ratio = (f"{phase.cpu_p95 / without.cpu_p95:.2f}x" if phase.cpu_p95
                     and without.cpu_p95 else "n/a")
        print(f"         p95 {', '.join(ratios) or 'n/a'}; in server CPU-seconds {cpu_ratio} "
              f"without")
        label = "abuser" if phase.name == "largest" else f"abuser ({phase.name})"
        lines.append(f"SUMMARY {label}: {phase.completed}/{n} completed, p95 "
                     f"{fmt_s(phase.p95)} vs {fmt_s(without.p95)} without, peak RSS "
                     f"{phase.peak_rss:.0f} MB, abuser: {phase.abuser.outcome}")
    # The largest run's line last (the line); the others before it.
    for line in sorted(lines, key=lambda line: line.startswith("SUMMARY abuser:")):
        print(line)


# ---------------------------------------------------------------------------
# --slots N: the old way (N training slots in the server's process) against the worker pool
# ---------------------------------------------------------------------------

GOAL_POOL_RATIO = 0.5  # pool p95 at most half the single-slot p95 (issue 13)


def slot_servers(slots: int) -> list[tuple[str, str, dict]]:
    """(name, title, environment) of the two servers `--slots` compares."""
    return [("slots", f"{slots} slot{'s' if slots != 1 else ''} in the server's process "
                      f"(MINILLM_WORKERS=0, MINILLM_TRAINING_SLOTS={slots})",
             {"MINILLM_WORKERS": "0", "MINILLM_TRAINING_SLOTS": str(slots)}),
            ("pool", "the worker pool (the app's defaults)",
             {"MINILLM_WORKERS": "", "MINILLM_TRAINING_SLOTS": ""})]


def compare_slots(args) -> int:
    """Each server in turn (`--rounds 2`: A B B A), one warm-up student, then `--students`
    default students at once; the p95 of each and whether the pool's is at most half."""
    servers = slot_servers(args.slots)
    order = servers if args.rounds == 1 else servers + servers[::-1]
    phases: list[tuple[str, Phase]] = []
    load_before = loadavg()
    print(f"load average before: {load_before}  ({os.cpu_count()} cores)", flush=True)
    for number, (name, title, env) in enumerate(order, start=1):
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        log_path = artifacts_dir() / f"load-test-server-{name}-{number}.log"
        clean = {k: v for k, v in env.items() if v}
        server = start_server(port, log_path, args.option,
                              env={**{k: v for k, v in os.environ.items()
                                      if k not in env}, **clean})
        sampler = None
        try:
            wait_for_health(base_url, server, log_path)
            print(f"[{number}/{len(order)}] {title}: server up at {base_url} "
                  f"(pid {server.pid}, log {log_path})", flush=True)
            sampler = Sampler(server.pid, READY_TIMEOUT + SESSIONS_DEADLINE + 600)
            sampler.start()
            phase = asyncio.run(slots_phase(base_url, name, title, args.students, sampler,
                                            server.pid))
            phases.append((name, phase))
        finally:
            if sampler is not None:
                sampler.stop_event.set()
            stop_process_group(server)
    report_slots(args, phases, load_before, loadavg())
    return 0


async def slots_phase(base_url: str, name: str, title: str, students: int, sampler: Sampler,
                      server_pid: int) -> Phase:
    import ws_driver

    sampler.phase = "warmup"
    warm = ws_driver.Result(index=0)
    await ws_driver.student_flow(base_url, warm, Barrier(1, READY_TIMEOUT), asyncio.Semaphore(1))
    if warm.status != "completed":
        raise RuntimeError(f"the warm-up student failed on {title}: {warm.reason}")
    return await ws_phase(base_url, name, title, students, sampler, server_pid)


def report_slots(args, phases: list[tuple[str, Phase]], load_before: str,
                 load_after: str) -> None:
    print()
    print(f"=== MiniLLM Lab load test --slots {args.slots}: {args.students} students on one "
          f"server, {args.slots} in-process slot(s) against the worker pool, same run ===")
    print(f"machine: {os.cpu_count()} cores; load average before {load_before}, after {load_after}")
    for name, phase in phases:
        n = len(phase.results)
        exact, others = exact_losses(phase.results)
        rest = max(0.0, phase.cpu["machine_busy"] - phase.cpu["server"] - phase.cpu["driver"])
        print(f"--- {phase.title} ---")
        print(f"  {phase.completed}/{n} completed, "
              f"{sum(s.exceptions for s in phase.results)} exceptions, exactly {NOTEBOOK_LOSS}: "
              f"{exact}/{n}{' (others: ' + others + ')' if others else ''}")
        print(f"  time to a trained model: p50 {fmt_s(percentile(phase.times, 50))}, p95 "
              f"{fmt_s(phase.p95)}; server CPU-s to each: p95 {fmt_s(phase.cpu_p95)}; server "
              f"{phase.cpu['server']:.1f} CPU-s in all, everything else on the machine "
              f"{rest:.1f} CPU-s; peak RSS {phase.peak_rss:.0f} MB (PSS {phase.peak_pss:.0f} MB)")
        # Where the work ran: the server's own process (every page, and the pool's round
        # trips) is one Python; on two cores it bounds the pool once it is as busy as a core.
        wall = phase.cpu["machine_total"] / max(os.cpu_count() or 1, 1)
        print(f"  of the server's CPU-s: its own process {phase.cpu['own']:.1f} "
              f"({phase.cpu['own'] / max(wall, 1e-9):.0%} of a core over the "
              f"{wall:.1f} s from the go to the last Generate), workers "
              f"{phase.cpu['server'] - phase.cpu['own']:.1f}; this driver "
              f"{phase.cpu['driver']:.1f} CPU-s; the machine idle "
              f"{max(0.0, phase.cpu['machine_total'] - phase.cpu['machine_busy']):.1f} CPU-s")
        # The whole spread, not only two percentiles: whether the last students lag the rest.
        print(f"  each student's time, sorted (s): "
              f"{' '.join(f'{t:.1f}' for t in sorted(phase.times))}")
        for s in phase.results:
            if s.status != "completed":
                print(f"  session {s.index:2d} failed: {s.reason}")

    def worst(kind: str) -> float | None:  # the larger p95 of a kind's rounds: no luck asked
        values = [p.p95 for name, p in phases if name == kind and p.p95 is not None]
        return max(values) if values else None

    single, pool = worst("slots"), worst("pool")
    n = args.students
    all_done = all(p.completed == len(p.results) for _, p in phases)
    ok = single is not None and pool is not None and pool <= GOAL_POOL_RATIO * single
    ratio = f"{pool / single:.2f}x" if single and pool else "n/a"
    cpu = {k: [p.cpu_p95 for name, p in phases if name == k and p.cpu_p95] for k in
           ("slots", "pool")}
    cpu_ratio = (f"{max(cpu['pool']) / max(cpu['slots']):.2f}x" if cpu["slots"] and cpu["pool"]
                 else "n/a")
    print("goals:")
    print(f"  [{'PASS' if all_done else 'FAIL'}] {n}/{n} completed on every server")
    print(f"  [{'PASS' if ok else 'FAIL'}] pool p95 at most {GOAL_POOL_RATIO:g}x the "
          f"single-slot p95: {fmt_s(pool)} vs {fmt_s(single)} ({ratio}; in server "
          f"CPU-seconds {cpu_ratio})")
    print(f"SUMMARY slots: {n} students, pool p95 {fmt_s(pool)} vs {args.slots} slot "
          f"p95 {fmt_s(single)} ({ratio}) -> "
          f"{'goal met' if ok and all_done else 'GOAL NOT MET'} (pool at most "
          f"{GOAL_POOL_RATIO:g}x)")


# ---------------------------------------------------------------------------
# --replicas N: a class over N replicas behind nginx with PostgreSQL; one replica killed
# ---------------------------------------------------------------------------

CLASS_CODE = "bench-class"
CLASS_OPENING_AT_ONCE = 6  # pages loading at once over all replicas (untimed)
KILL_SETTLE = 2.0  # s after the kill before the board is counted (its connections are gone)


def board_run_ids(database_url: str, code: str) -> set[int]:
    """Every run on `code`'s board, hidden ones too, read from the database itself."""
    sys.path.insert(0, str(ROOT))
    from minillm.store import TeacherBoard, open_store

    board = open_store(database_url)
    try:
        return {run.id for run in TeacherBoard(board).list_runs(code, include_hidden=True)}
    finally:
        board.close()


def run_replicas(args) -> int:
    sys.path.insert(0, str(ROOT / "deploy"))
    import local_cluster

    problem = local_cluster.missing()
    if problem:
        print(f"harness broken: no local cluster on this machine: {problem}")
        return 2
    env = {"MINILLM_WORKERS": str(args.workers)} if args.workers is not None else {}
    load_before = loadavg()
    print(f"load average before: {load_before}  ({os.cpu_count()} cores); starting PostgreSQL, "
          f"{args.replicas} replicas and nginx ...", flush=True)
    cluster = local_cluster.LocalCluster(args.replicas, env=env)
    samplers: list[Sampler] = []
    try:
        try:
            cluster.start()
        except (RuntimeError, OSError, subprocess.SubprocessError) as error:
            print(f"harness broken: the local cluster did not start: {first_line(error)} "
                  f"(logs in {cluster.folder})")
            return 2
        sys.path.insert(0, str(ROOT))
        from minillm.store import TeacherBoard, open_store

        board = open_store(cluster.database_url)
        TeacherBoard(board).create_class(CLASS_CODE)
        board.close()
        print(f"nginx at {cluster.url}; replicas {', '.join(cluster.replica_urls)}; class "
              f"{CLASS_CODE} on {cluster.database_url}", flush=True)
        samplers = [Sampler(pid, 2 * (READY_TIMEOUT + SESSIONS_DEADLINE) + 600)
                    for pid in cluster.replica_pids()]
        for sampler in samplers:
            sampler.start()
        outcome = asyncio.run(drive_replicas(cluster, args, samplers))
        for sampler in samplers:
            sampler.stop_event.set()
        report_replicas(args, cluster, outcome, samplers, load_before, loadavg())
        return 0
    finally:
        for sampler in samplers:
            sampler.stop_event.set()
        cluster.stop()
        if not args.keep_logs:
            cluster.cleanup()
        else:
            print(f"logs kept in {cluster.folder}")


async def drive_replicas(cluster, args, samplers: list[Sampler]) -> dict:
    import ws_driver

    # Warm-up: one default student on each replica (its cookie chooses it), not in the class.
    for sampler in samplers:
        sampler.phase = "warmup"
    warm = [ws_driver.Result(index=-n) for n in range(1, args.replicas + 1)]
    await asyncio.gather(*[ws_driver.student_flow(
        cluster.url, r, Barrier(1, READY_TIMEOUT), asyncio.Semaphore(1),
        cookies={"minillm_route": f"minillm_r{n}"}) for n, r in enumerate(warm, start=1)])
    broken = [f"replica {n}: {r.reason}" for n, r in enumerate(warm, start=1)
              if r.status != "completed"]
    if broken:
        raise RuntimeError(f"a warm-up student failed: {'; '.join(broken)}")
    for sampler in samplers:
        sampler.phase = "load"

    results = [ws_driver.ClassResult(index=i + 1, nickname=f"student {i + 1:02d}")
               for i in range(args.students)]
    lesson_over = asyncio.Event()
    outcome: dict = {"warm": warm, "results": results, "kill": None}

    def go():
        outcome["go"] = time.monotonic()
        print(f"all {args.students} students joined {CLASS_CODE}: Train ...", flush=True)

    barrier = Barrier(len(results), READY_TIMEOUT, on_release=go)
    opening = asyncio.Semaphore(CLASS_OPENING_AT_ONCE)
    tasks = [asyncio.ensure_future(ws_driver.class_flow(
        cluster.url, r, barrier, opening, CLASS_CODE, lesson_over,
        train_timeout=ws_driver.CLASS_TRAIN_TIMEOUT)) for r in results]

    async def killer():
        """When `--kill-after` of the students have posted: crash replica `--kill`."""
        want = max(1, round(args.kill_after * args.students))
        while sum(r.posted for r in results) < want:
            if all(r.settled for r in results):
                return
            await asyncio.sleep(0.2)
        number = args.kill
        address = cluster.replica_address(number)
        on_it = [r for r in results if r.upstream == address]
        before = {"posted": sum(r.posted for r in on_it),
                  "training": sum(not r.posted and r.status != "failed" for r in on_it)}
        told = {i for r in results for i in r.run_ids}  # runs the pages said were posted
        await asyncio.to_thread(cluster.kill_replica, number)
        kill_at = time.monotonic()
        print(f"killed replica {number} ({address}) with {len(on_it)} students on it "
              f"({before['posted']} posted, {before['training']} not yet), "
              f"{len(told)} runs posted in all", flush=True)
        await asyncio.sleep(KILL_SETTLE)
        rows = await asyncio.to_thread(board_run_ids, cluster.database_url, CLASS_CODE)
        outcome["kill"] = {"replica": number, "address": address, "at": kill_at,
                           "students": len(on_it), **before, "told_before": told,
                           "rows_after_kill": rows}

    kill_task = asyncio.ensure_future(killer()) if args.kill else None
    deadline = time.monotonic() + READY_TIMEOUT + 2 * SESSIONS_DEADLINE
    while not all(r.settled for r in results) and time.monotonic() < deadline:
        if all(t.done() for t in tasks):
            break
        await asyncio.sleep(0.5)
    if kill_task is not None and not kill_task.done():
        kill_task.cancel()
    lesson_over.set()
    done, pending = await asyncio.wait(tasks, timeout=120)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if kill_task is not None:
        await asyncio.gather(kill_task, return_exceptions=True)
    for r in results:
        if r.status not in ("completed", "failed"):
            r.fail("still running at the deadline")
    outcome["end"] = time.monotonic()
    outcome["rows_end"] = await asyncio.to_thread(board_run_ids, cluster.database_url,
                                                  CLASS_CODE)
    return outcome


def report_replicas(args, cluster, outcome: dict, samplers: list[Sampler], load_before: str,
                    load_after: str) -> None:
    results, kill = outcome["results"], outcome["kill"]
    n = len(results)
    number_of = {cluster.replica_address(i): i for i in range(1, args.replicas + 1)}
    trained = sum(r.train_seconds is not None for r in results)
    posted = sum(r.posted for r in results)
    exceptions = sum(r.exceptions for r in results)
    times = [r.train_seconds for r in results if r.train_seconds is not None]
    p95 = percentile(times, 95)
    rows_end = outcome["rows_end"]
    told = {i for r in results for i in r.run_ids}
    print()
    print(f"=== MiniLLM Lab load test --replicas {args.replicas}: {n} students as websocket "
          f"clients through nginx ({cluster.url}), one PostgreSQL ===")
    print(f"machine: {os.cpu_count()} cores; load average before {load_before}, after "
          f"{load_after}; replica workers: "
          f"{args.workers if args.workers is not None else 'the default (one per core)'}")
    spread = Counter(number_of.get(r.upstream, 0) for r in results)
    print("students per replica (nginx's draw, kept by its cookie; page and websocket on the "
          "same server for every one): " + ", ".join(
              f"replica {k}: {v}" for k, v in sorted(spread.items()) if k) +
          (f", unknown: {spread[0]}" if spread.get(0) else ""))
    for number, sampler in enumerate(samplers, start=1):
        load = [s for s in sampler.samples if s.phase == "load"]
        peak = max((s.rss_mb for s in load), default=float("nan"))
        pss = max((s.pss_mb for s in load), default=float("nan"))
        print(f"  replica {number}: peak RSS {peak:.0f} MB (PSS {pss:.0f} MB) with "
              f"{spread.get(number, 0)} students" + (" (until it was killed)"
                                                      if kill and kill["replica"] == number
                                                      else ""))
    print(f"time to a trained model (first Train click -> done marker of the model it posted, "
          f"{len(times)} students): p50 {fmt_s(percentile(times, 50))}, p95 {fmt_s(p95)}, "
          f"max {fmt_s(max(times, default=None))}")
    sidebar = sum(r.sidebar_reruns for r in results)
    if sidebar:
        print(f"note: {sidebar} page(s) drew no class box on their first run and were run "
              f"again before joining (ws_driver.join_class)")
    lost = set()
    if kill:
        dead = kill["address"]
        victims = [r for r in results if r.upstream == dead]
        others = [r for r in results if r.upstream != dead]
        dropped = [r for r in victims if r.dropped]
        reloaded = [r for r in victims if r.reloaded]
        back = [r for r in reloaded if r.status == "completed" and r.posted]
        where = Counter(number_of.get(r.upstream_after, 0) for r in reloaded)
        lost = (kill["rows_after_kill"] | kill["told_before"]) - rows_end
        others_ok = [r for r in others if not r.dropped and r.status == "completed" and r.posted]
        other_times = [r.train_seconds for r in others if r.train_seconds is not None]
        print(f"kill: replica {kill['replica']} ({dead}) got SIGKILL (server and workers) with "
              f"{kill['students']} students on it, {kill['posted']} posted and "
              f"{kill['training']} not yet")
        print(f"  its students told to reload (websocket dropped): {len(dropped)}/{len(victims)}"
              f" (while: {dict(Counter(r.dropped_while for r in dropped))}); reloaded and "
              f"trained and posted again: {len(back)}/{len(reloaded)}, landing on "
              + (", ".join(f"replica {k}" for k in sorted(where) if k) or "nowhere"))
        print(f"  board rows in PostgreSQL: {len(kill['rows_after_kill'])} {KILL_SETTLE:.0f} s "
              f"after the kill ({len(kill['told_before'])} posts the pages had confirmed before "
              f"it), {len(rows_end)} at the end; lost: {len(lost)}"
              + (f" (ids {sorted(lost)})" if lost else ""))
        print(f"  the other replicas' students: {len(others_ok)}/{len(others)} unaffected (no "
              f"drop, trained, posted); their p95 {fmt_s(percentile(other_times, 95))}")
    for r in results:
        if r.status != "completed":
            print(f"  student {r.index:2d} failed: {r.reason}")
    missing = told - rows_end
    goals = [(f"{n}/{n} trained", trained == n), (f"{n}/{n} posted", posted == n),
             ("0 exceptions", exceptions == 0),
             ("every confirmed post is on the board at the end", not missing)]
    if kill:
        goals += [("the killed replica's students told to reload",
                   len(dropped) == len(victims) > 0),
                  ("nothing posted before the kill lost", not lost),
                  ("the other replicas' students unaffected", len(others_ok) == len(others))]
    print("goals:")
    for name, ok in goals:
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}")
    if kill:
        tail = (f"replica {kill['replica']} killed mid-run: its {len(victims)} students told "
                f"to reload ({len(dropped)}/{len(victims)} websockets dropped, {len(back)} "
                f"reloaded onto replica "
                f"{'/'.join(str(k) for k in sorted(where) if k) or '-'} and posted again), the "
                f"other {len(others_ok)}/{len(others)} unaffected")
    else:
        tail = "no replica killed"
    verdict = "ALL GOALS MET" if all(ok for _, ok in goals) else "GOALS NOT MET: " + ", ".join(
        name for name, ok in goals if not ok)
    print(f"SUMMARY replicas={args.replicas} students={n}: {trained}/{n} trained, "
          f"{posted}/{n} posted, {exceptions} exceptions, p95 {fmt_s(p95)}, lost after kill "
          f"{len(lost) if kill else 'n/a'} -> {tail}; {verdict}")


def measured_modes(args) -> int:
    """--slots and --replicas (issue 13); a broken harness says why in one line, exit 2."""
    if args.slots is not None and args.replicas is not None:
        print("harness broken: --slots and --replicas are two runs: give one of them")
        return 2
    try:
        import ws_driver  # noqa: F401
    except ImportError as error:
        print(f"harness broken: the websocket driver is not importable: {error}")
        return 2
    try:
        if args.slots is not None:
            args.slots = max(1, min(args.slots, 16))
            args.students = max(1, min(args.students or 30, 200))
            return compare_slots(args)
        args.replicas = max(1, min(args.replicas, 8))
        args.students = max(1, min(args.students or 30 * args.replicas, 300))
        if args.kill and not 1 <= args.kill <= args.replicas:
            print(f"harness broken: --kill {args.kill}: there are replicas 1 to {args.replicas}")
            return 2
        if args.kill and args.replicas < 2:
            print("harness broken: killing the only replica leaves nowhere to reload: --kill 0")
            return 2
        args.kill_after = max(0.0, min(args.kill_after, 1.0))
        return run_replicas(args)
    except KeyboardInterrupt:
        print("interrupted")
        return 2
    except Exception as error:  # noqa: BLE001 - the harness broke: say why, no traceback
        print(f"harness broken: {type(error).__name__}: {first_line(error)}")
        return 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--driver", choices=["ws", "browser"], default="ws",
                        help="students as websocket clients (ws, default) or Chromium tabs")
    parser.add_argument("--sessions", type=int, default=30, help="concurrent students (30)")
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument("--settle", type=float, default=None,
                        help="seconds to sample after the sessions closed (180; with "
                             "--abuser 0)")
    parser.add_argument("--browsers", type=int, default=1,
                        help="Chromium instances the sessions are spread over (1)")
    parser.add_argument("--option", action="append", default=[], metavar="SECTION.NAME=VALUE",
                        help="an extra streamlit config flag for the server, e.g. "
                             "runner.postScriptGC=false (repeatable; default: none, so "
                             ".streamlit/config.toml rules)")
    parser.add_argument("--abuser", action="store_true",
                        help="the class without and with one abuser: --sessions minus one "
                             "default students, plus one who sets the largest run the Train "
                             "page offers (websocket driver only)")
    parser.add_argument("--abuser-wait", type=float, default=180.0,
                        help="seconds from the abuser's Train click until the bench stops "
                             "waiting for its run (180)")
    parser.add_argument("--slots", type=int, default=None, metavar="N",
                        help="the old way against the pool, in one run: one server with N "
                             "training slots in its own process (MINILLM_WORKERS=0), then one "
                             "with the worker pool, --students each; p95 of both and whether "
                             "the pool's is at most half")
    parser.add_argument("--rounds", type=int, choices=[1, 2], default=1,
                        help="with --slots: 2 runs the servers A B B A (the larger p95 of "
                             "each counts)")
    parser.add_argument("--replicas", type=int, default=None, metavar="N",
                        help="N replicas behind nginx with PostgreSQL (deploy/local_cluster.py):"
                             " --students join a class, train and post; one replica is killed "
                             "mid-run (--kill)")
    parser.add_argument("--students", type=int, default=None,
                        help="students for --slots (30) and --replicas (30 per replica)")
    parser.add_argument("--kill", type=int, default=2, metavar="R",
                        help="with --replicas: the replica (1..N) to kill mid-run, 0 for none (2)")
    parser.add_argument("--kill-after", type=float, default=0.33, metavar="SHARE",
                        help="with --replicas: kill once this share of the students posted (0.33)")
    parser.add_argument("--workers", type=int, default=None,
                        help="with --replicas: MINILLM_WORKERS of each replica (default: the "
                             "app's, one per core)")
    parser.add_argument("--keep-logs", action="store_true",
                        help="with --replicas: keep the cluster's folder (logs) afterwards")
    args = parser.parse_args()
    if args.slots is not None or args.replicas is not None:
        return measured_modes(args)
    args.sessions = max(2 if args.abuser else 1, min(args.sessions, 200))
    args.browsers = max(1, min(args.browsers, args.sessions))
    args.settle = 0.0 if args.settle is None and args.abuser else (
        180.0 if args.settle is None else args.settle)
    args.settle = max(0.0, min(args.settle, 3600.0))
    args.abuser_wait = max(10.0, min(args.abuser_wait, SESSIONS_DEADLINE - 120))
    if args.abuser and args.driver != "ws":
        print("--abuser drives its students over the websocket (the default --driver ws): "
              "thirty Chromium tabs on two cores would measure the browsers")
        return 2

    if args.driver == "browser" and not CHROMIUM.exists():
        print(f"harness broken: {CHROMIUM} is missing (apt-get install chromium)")
        return 2
    try:
        if args.driver == "browser":
            import playwright.async_api  # noqa: F401
        else:
            import ws_driver  # noqa: F401
    except ImportError as error:
        print(f"harness broken: the {args.driver} driver is not importable: {error}")
        return 2

    port = args.port or free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = artifacts_dir() / "load-test-server.log"
    load_before = loadavg()
    print(f"load average before: {load_before}  ({os.cpu_count()} cores)", flush=True)
    server = start_server(port, log_path, args.option)
    sampler = None
    try:
        wait_for_health(base_url, server, log_path)
        print(f"server up at {base_url} (pid {server.pid}, log {log_path})", flush=True)
        max_seconds = (READY_TIMEOUT + SESSIONS_DEADLINE) * (4 if args.abuser else 1) \
            + args.settle + 600
        sampler = Sampler(server.pid, max_seconds)
        sampler.start()

        start = {}

        def driver_cpu() -> float:  # browsers: exited children; ws clients: this process
            return time.process_time() if args.driver == "ws" else sum(os.times()[2:4])

        def on_load_start():
            start.update(server=group_cpu(server.pid), machine=machine_cpu(),
                         browser=driver_cpu())
            print(f"all {args.sessions} sessions have the Train page open: Train ...", flush=True)

        print("warm-up session, then the baseline ...", flush=True)
        if args.abuser:
            warm, phases, text = asyncio.run(drive_abuser(
                base_url, args.sessions - 1, sampler, server.pid, args.abuser_wait))
            base = [s.rss_mb for s in sampler.phase_samples("baseline")][-WINDOW_SAMPLES:]
            baseline = statistics.median(base) if base else float("nan")
            sampler.stop_event.set()
            sampler.join(timeout=5)
            if server.poll() is not None:
                print(f"note: the server exited early with code {server.returncode}")
            report_abuser(args, warm, phases, text, baseline, load_before, loadavg())
            return 0
        if args.driver == "ws":
            coroutine = drive_ws(base_url, args.sessions, sampler, on_load_start)
        else:
            coroutine = drive(base_url, args.sessions, args.browsers, sampler, on_load_start)
        warm, results, info = asyncio.run(coroutine)
        # The browsers and Playwright's driver have exited (and been reaped): their CPU time
        # is in os.times()'s children; the server is still running, so it is not.
        busy, total = machine_cpu()
        cpu = {"server": group_cpu(server.pid) - start["server"],
               "browser": driver_cpu() - start["browser"],
               "machine_busy": busy - start["machine"][0],
               "machine_total": total - start["machine"][1]}
        base = [s.rss_mb for s in sampler.phase_samples("baseline")][-WINDOW_SAMPLES:]
        baseline = statistics.median(base) if base else float("nan")

        sampler.phase = "settle"
        print(f"sessions closed; settling {args.settle:.0f} s ...", flush=True)
        settle_end = time.monotonic() + args.settle
        while time.monotonic() < settle_end and server.poll() is None:
            time.sleep(min(5.0, max(0.0, settle_end - time.monotonic())))
        sampler.stop_event.set()
        sampler.join(timeout=5)
        if server.poll() is not None:
            print(f"note: the server exited early with code {server.returncode}")
        load_after = loadavg()
        report(args, warm, results, info, sampler, baseline, load_before, load_after, cpu)
        return 0
    except Exception as error:  # noqa: BLE001 - the harness broke
        print(f"harness broken: {type(error).__name__}: {error}")
        return 2
    finally:
        if sampler is not None:
            sampler.stop_event.set()
        stop_process_group(server)


if __name__ == "__main__":
    sys.exit(main())
