"""Warm page reruns on the server: each page's script time, against a one-line reference page.

    python bench/page_times.py [--repeats 7]

Each page is run once under AppTest (cold: caches fill), then rerun `repeats` times with nothing
changed (warm: what a student's click costs the server when nothing is training). A one-line
page is timed the same way in the same process, so the ratio shows the page's own cost
whatever the machine's load. Goal: every warm rerun under 250 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import logging  # noqa: E402

from streamlit.testing.v1 import AppTest  # noqa: E402

from minillm.experiment import Experiment, TrainSettings  # noqa: E402

PAGES = ["home", "words_vs_tokens", "compare", "build_bpe", "train", "generate", "attention"]
NEEDS_MODEL = {"train", "generate", "attention"}
GOAL_MS = 250


def warm_ms(script: Path, repeats: int, state: dict | None = None) -> float:
    at = AppTest.from_file(str(script), default_timeout=120)
    for key, value in (state or {}).items():
        at.session_state[key] = value
    at.run()
    if at.exception:
        raise RuntimeError(f"{script.name}: {at.exception[0].message}")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        at.run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    for name in ("streamlit", "streamlit.runtime.scriptrunner_utils.script_run_context"):
        logging.getLogger(name).setLevel(logging.ERROR)  # "missing ScriptRunContext" chatter
    trained = Experiment(TrainSettings())
    trained.trainer.run()
    with tempfile.TemporaryDirectory() as folder:
        reference = Path(folder) / "reference.py"
        reference.write_text("import streamlit as st\nst.write('hello')\n")
        reference_ms = warm_ms(reference, args.repeats)
    print(f"reference one-line page: {reference_ms:.1f} ms (median of {args.repeats} warm reruns)")
    worst = 0.0
    for name in PAGES:
        state = {"experiment": trained} if name in NEEDS_MODEL else None
        ms = warm_ms(ROOT / "pages" / f"{name}.py", args.repeats, state)
        worst = max(worst, ms)
        verdict = "ok" if ms < GOAL_MS else f"OVER {GOAL_MS} ms"
        print(f"{name:16} {ms:7.1f} ms   {ms / reference_ms:5.1f}x the reference   {verdict}")
    print(f"page_times: slowest warm rerun {worst:.0f} ms (goal < {GOAL_MS} ms): "
          f"{'met' if worst < GOAL_MS else 'NOT met'}")


if __name__ == "__main__":
    main()
