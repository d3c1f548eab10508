"""The load test's websocket student (bench/ws_driver.py) against a real server: one student's
whole class flow, so the harness that measures thirty cannot silently rot."""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import ws_driver  # noqa: E402


def test_one_websocket_student_trains_and_generates(streamlit_server):
    result = ws_driver.Result(index=1)
    ready = ws_driver.Barrier(1, timeout=60)


    async def flow():
        await ws_driver.student_flow(streamlit_server, result, ready, asyncio.Semaphore(1))

    # Its own thread: the browser tests' Playwright keeps an event loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, flow()).result(timeout=300)
    assert result.status == "completed", result.reason
    assert result.train_seconds is not None and result.exceptions == 0
    assert result.fragment_requests > 0  # trained through the fragment's timer, as a browser does
    assert result.seed_after == result.seed_before + 1 and result.generated.strip()
