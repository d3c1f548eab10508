"""A chunk's round trip to a worker: its state as torch tensors against packed bytes.

    python bench/pool_round_trip.py [--trips 40]

Why it matters: in a class every student's chunks are sent and received by the server's one
process, so the server's CPU per round trip is what thirty students queue for, on top of
redrawing their pages. One worker (`minillm.workers.ChunkPool(1)`), the notebook's run, in
this process, alternating the two ways trip by trip (noise hits both alike):

- **tensors**: the state as `export_state` gives it, sent as it is. Python's multiprocessing
  moves every tensor through torch's shared memory (a file and a descriptor hand-over each);
- **packed**: what `ChunkPool.train_chunk` does: `minillm.workers.dumps` turns the small
  tensors into numpy arrays inside one pickled bytes string.

Two kinds of trip: *empty* (no epoch trained: the transport alone) and *50 epochs* (a chunk of
the notebook's run as the Train page asks for one). Each prints the server process's CPU time
per trip (all its threads: the pool's feeder thread pickles) and the wall clock per trip; the
last line gives packed over tensors for the empty trip. The numbers are the same either way
(tests/test_workers.py checks them bit for bit).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from minillm import workers  # noqa: E402
from minillm.experiment import Experiment, TrainSettings  # noqa: E402


def trip_tensors(pool: workers.ChunkPool, trainer, epochs: int) -> None:
    state = workers.export_state(trainer)
    result = pool._pool().submit(workers.run_chunk, state, budget(epochs), max(epochs, 1),
                                 10.0).result()
    workers.apply_state(trainer, result)


def trip_packed(pool: workers.ChunkPool, trainer, epochs: int) -> None:
    pool.train_chunk(trainer, cpu_seconds=budget(epochs), max_epochs=max(epochs, 1),
                     wall_seconds=10.0)


def budget(epochs: int) -> float:
    """No CPU time for an empty trip: the worker rebuilds the run and sends it straight back."""
    return 10.0 if epochs else 0.0


def measure(pool, trips: int, epochs: int) -> dict[str, tuple[float, float]]:
    ways = {"tensors": trip_tensors, "packed": trip_packed}
    times = {name: ([], []) for name in ways}
    runs = {name: Experiment(TrainSettings(epochs=100_000), device="cpu") for name in ways}
    for _ in range(trips):
        for name, trip in ways.items():
            cpu, wall = time.process_time(), time.perf_counter()
            trip(pool, runs[name].trainer, epochs)
            times[name][0].append(time.process_time() - cpu)
            times[name][1].append(time.perf_counter() - wall)
    return {name: (statistics.median(c) * 1e3, statistics.median(w) * 1e3)
            for name, (c, w) in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trips", type=int, default=40)
    args = parser.parse_args()
    pool = workers.ChunkPool(1)
    pool.warm_up()
    try:
        measure(pool, 3, 1)  # both ways once: the worker's first chunk imports and allocates
        print(f"=== pool round trip: the notebook's run, one worker, {args.trips} trips each "
              f"(median; server CPU = all the server process's threads) ===")
        results = {}
        for epochs, label in ((0, "empty"), (50, "50 epochs")):
            results[label] = measure(pool, args.trips, epochs)
            for name, (cpu, wall) in results[label].items():
                print(f"{label:>9} trip, {name:>7}: server CPU {cpu:6.2f} ms   wall {wall:6.2f} ms")
    finally:
        pool.shutdown()
    (cpu_t, wall_t), (cpu_p, wall_p) = results["empty"]["tensors"], results["empty"]["packed"]
    print(f"pool_round_trip: packed {cpu_p / cpu_t:.2f}x the server CPU of tensors per empty "
          f"trip ({cpu_p:.1f} vs {cpu_t:.1f} ms), {wall_p / wall_t:.2f}x the wall clock "
          f"({wall_p:.1f} vs {wall_t:.1f} ms)")


if __name__ == "__main__":
    main()
