"""The Which tokens? experiment's default, end to end, as the class server runs it.

    python bench/tournament_speed.py

A student opens the Which tokens? page (AppTest) with its defaults (generated stories, 30%
new names, the quick budget) and presses Run: the job goes through the server's registry
(`ui.tournament_jobs`) exactly as in class: entrants
prepared and scored in this process, their training chunks in the worker processes
(`minillm.workers`, MINILLM_WORKERS; 0 trains in this process), each chunk holding a training
slot. When it is done their page shows the results. It prints each entrant's training time,
the experiment's CPU (this process and the workers together, the student's page runs
included) and wall clock, then the time a second student's identical request takes: the whole
page (app.py, the page, its chart and table) run by AppTest with the result already on the
server, and the registry lookup alone.

Goals: the quick experiment under 30 s of CPU on this project's 2-core machine; a repeated
request under 0.5 s.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import logging  # noqa: E402

logging.getLogger("streamlit").setLevel(logging.ERROR)  # bare-mode warnings: not ours

import torch  # noqa: E402

torch.set_num_threads(1)  # as app.py

from streamlit.testing.v1 import AppTest  # noqa: E402

from minillm import tournament as T  # noqa: E402
from minillm import workers  # noqa: E402
from ui import tournament_jobs as jobs  # noqa: E402

CPU_GOAL, REPEAT_GOAL = 30.0, 0.5


def _ticks(pid: int) -> int:
    """User + system CPU of a process so far, in clock ticks (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def worker_cpu(pool) -> float:
    """CPU seconds the pool's worker processes have used so far."""
    executor = getattr(pool, "_executor", None) if pool is not None else None
    pids = list(getattr(executor, "_processes", {}) or {})
    return sum(_ticks(pid) for pid in pids) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    pool = workers.shared_pool()
    if pool is not None:
        started = time.perf_counter()
        pool.warm_up()  # the server starts its workers with the first training, once
        print(f"{pool.workers} worker processes started in {time.perf_counter() - started:.1f} s "
              "(once per server; not counted below)")
    else:
        print("MINILLM_WORKERS=0: training in this process")
    import torch._dynamo  # noqa: F401  (the first optimizer imports it: once per server)

    settings = T.with_budget(T.TournamentSettings(), "quick", "small")  # the page's default
    registry = jobs.registry()
    cpu0, workers0, wall0 = time.process_time(), worker_cpu(pool), time.perf_counter()
    # The first student opens the page with its defaults and presses Run.
    first = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    first.switch_page("pages/which_tokens.py").run()
    first.button(key="tok_run").click().run()
    assert not first.exception, first.exception
    corpus = jobs.stories(T.DEFAULT_STORIES)
    key = jobs.job_key(corpus, settings)
    job = registry.find(key)
    if not isinstance(job, jobs.Job):
        raise SystemExit(f"the page did not start the default experiment: {job!r}")
    job.wait()
    wall = time.perf_counter() - wall0
    first.run()  # ... and, when it is done, their page shows the results
    assert not first.exception, first.exception
    cpu = (time.process_time() - cpu0) + (worker_cpu(pool) - workers0)
    result = registry.find(key)
    if not isinstance(result, T.TournamentResult):
        raise SystemExit(f"the experiment failed: {job.error}")
    print(f"corpus: {corpus.name}; {len(corpus.train):,} training stories, "
          f"{len(corpus.valid):,} held out ({result.heldout_chars:,} characters)")
    print(f"{'entrant':<14}{'vocab':>7}{'params':>9}{'train s':>9}{'bits/char':>11}{'unknown':>9}")
    for e in result.entrants:
        print(f"{e.name:<14}{e.vocab_size:>7,}{e.parameters:>9,}{e.seconds:>9.2f}"
              f"{e.heldout_bits:>11.3f}{e.unknown_share:>9.1%}")
    training = sum(e.seconds for e in result.entrants)
    print(f"the whole experiment: {cpu:.1f} s CPU (this process and the workers; estimate "
          f"{jobs.estimate(corpus, settings):.0f} s), {wall:.1f} s wall clock; the trainers' "
          f"clocks {training:.1f} s (on a busy machine the clock runs ahead of the CPU)")
    print(result.verdict())

    # A second student asks for the same experiment: the page finds it on the server.
    second = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    started = time.perf_counter()
    second.switch_page("pages/which_tokens.py").run()
    page = time.perf_counter() - started
    assert not second.exception, second.exception
    assert any("Experiment done" in s.value for s in second.success), "the page did not find it"
    started = time.perf_counter()
    again = registry.find(jobs.job_key(jobs.stories(T.DEFAULT_STORIES), settings))
    lookup = time.perf_counter() - started
    assert again is result
    print(f"repeated request: the whole page {page:.2f} s (goal < {REPEAT_GOAL} s), the "
          f"registry lookup {lookup * 1000:.2f} ms")
    print(f"goals: CPU {'met' if cpu < CPU_GOAL else 'NOT met'} ({cpu:.1f} < {CPU_GOAL:.0f} s), "
          f"repeat {'met' if page < REPEAT_GOAL else 'NOT met'}")
    words, best = result.entrant("words"), result.best()
    print(f"tournament_speed: quick experiment {cpu:.1f} s CPU ({len(result.entrants)} entrants), "
          f"repeated request {page:.2f} s; best held-out: {best.name} {best.heldout_bits:.3f} "
          f"bits per character, words {words.heldout_bits:.3f}")
    if pool is not None:
        pool.shutdown()


if __name__ == "__main__":
    main()
