"""The worker pool's cache (minillm.workers): a run's windows go to a worker once and stay
there by a hash of their content, with a Trainer shell around them; the cache is bounded in
bytes (least recently used out first); a worker that lost a run's windows gets them again; a
changed run never trains on stale windows; and the numbers stay exactly those of in-process
training."""

from __future__ import annotations

import contextlib
import os
import signal

import pytest

from minillm import workers
from minillm.corpus import CATS_AND_DOGS
from minillm.experiment import Experiment, TrainSettings
from tests.test_workers import assert_same, in_process

ONE_RUN_BYTES = 500_000  # one default run's windows and shell fit, two do not


@pytest.fixture
def one_worker():
    pool = workers.ChunkPool(1)
    pool.warm_up()
    yield pool
    pool.shutdown()


def chunks(pool, exp: Experiment, epochs: int = 37) -> list[dict]:
    """Train `exp` to its end through `pool`, `epochs` a chunk; each chunk's report."""
    reports = []
    while not exp.trainer.done:
        report = {}
        pool.train_chunk(exp.trainer, cpu_seconds=10.0, max_epochs=epochs, wall_seconds=30.0,
                         report=report)
        reports.append(report)
    return reports


def one_chunk(pool, exp: Experiment, epochs: int = 37) -> dict:
    report = {}
    pool.train_chunk(exp.trainer, cpu_seconds=10.0, max_epochs=epochs, wall_seconds=30.0,
                     report=report)
    return report


def test_a_runs_windows_travel_once_then_stay_in_the_worker(one_worker):
    exp = Experiment(TrainSettings(), device="cpu")
    reports = chunks(one_worker, exp)
    assert len(reports) > 3
    assert [r["data_sent"] for r in reports] == [True] + [False] * (len(reports) - 1)
    assert [r["built"] for r in reports] == [True] + [False] * (len(reports) - 1)
    assert one_worker.counts["data_sent"] == 1 and one_worker.counts["misses"] == 0
    assert round(exp.summary()["loss"], 4) == 0.3845
    assert_same(in_process(TrainSettings()), exp)


@pytest.mark.parametrize("settings", [
    TrainSettings(epochs=120),
    TrainSettings(loss_on="every", causal=True, batch_size=8, epochs=60),
], ids=["notebook", "every-batches"])
def test_runs_with_the_same_settings_share_a_shell_and_keep_their_own_numbers(one_worker,
                                                                              settings):
    from dataclasses import replace

    runs = [Experiment(replace(settings, seed=seed), device="cpu") for seed in (1, 2, 3)]
    while not all(exp.trainer.done for exp in runs):  # their chunks take turns on one worker
        for exp in runs:
            if not exp.trainer.done:
                one_chunk(one_worker, exp, epochs=13)
    assert one_worker.counts["shells_built"] == 1 and one_worker.counts["data_sent"] == 1
    for exp, seed in zip(runs, (1, 2, 3)):
        assert_same(in_process(replace(settings, seed=seed), chunk=13), exp)
    assert runs[0].trainer.history != runs[1].trainer.history


def test_a_changed_run_never_reuses_stale_windows(one_worker):
    """Other text of the same shapes, the same settings otherwise: the shell's settings are the
    same, only the windows' content differs, and it must be this run's that is trained on."""
    other_lines = tuple(line.replace("cat", "dog") if i == 0 else line
                        for i, line in enumerate(CATS_AND_DOGS))
    first = Experiment(TrainSettings(), device="cpu")
    second = Experiment(TrainSettings(lines=other_lines), device="cpu")
    assert first.trainer.X.shape == second.trainer.X.shape
    assert workers.shell_spec(first.trainer) == workers.shell_spec(second.trainer)
    one_chunk(one_worker, first)  # the first run's windows and shell are in the worker now
    report = one_chunk(one_worker, second)
    assert report["data_sent"] and report["built"]
    chunks(one_worker, second)
    alone = in_process(TrainSettings(lines=other_lines))
    assert_same(alone, second)
    assert alone.trainer.history != in_process(TrainSettings()).trainer.history


def test_the_data_key_is_hashed_once_and_again_when_the_windows_change(monkeypatch):
    exp = Experiment(TrainSettings(), device="cpu")
    hashed = []
    real = workers._hash_payload
    monkeypatch.setattr(workers, "_hash_payload", lambda p: hashed.append(1) or real(p))
    key, size = workers.data_key(exp.trainer)
    assert workers.data_key(exp.trainer) == (key, size) and len(hashed) == 1  # remembered
    assert size == exp.trainer.X.nbytes + exp.trainer.Y.nbytes
    exp.trainer.dataset.X[0, 0] += 1  # changed in place: its version counter moves
    changed, _ = workers.data_key(exp.trainer)
    assert changed != key and len(hashed) == 2
    exp.trainer.dataset.X[0, 0] -= 1
    assert workers.data_key(exp.trainer)[0] == key and len(hashed) == 3  # the same content
    other = Experiment(TrainSettings(), device="cpu")
    exp.trainer.dataset = other.trainer.dataset  # another dataset object, the same windows
    assert workers.data_key(exp.trainer)[0] == key and len(hashed) == 4


def test_a_worker_that_evicted_a_runs_windows_gets_them_again():
    """The cache holds one run: the second run's entries push the first one's out, the server
    (which counts only the windows it sent) does not know, the worker says it misses them."""
    pool = workers.ChunkPool(1, cache_bytes=ONE_RUN_BYTES)
    try:
        first = Experiment(TrainSettings(), device="cpu")
        second = Experiment(TrainSettings(tokenizer="character", epochs=30), device="cpu")
        assert one_chunk(pool, first)["data_sent"]
        assert one_chunk(pool, second)["data_sent"]
        (cache,) = pool.cache_of()
        assert cache["bytes"] <= ONE_RUN_BYTES and cache["evicted"] == 2  # windows and shell
        first_key, _ = workers.data_key(first.trainer)
        assert all(key[1] != first_key for key in cache["keys"])
        report = one_chunk(pool, first)
        assert report["data_sent"] and report["built"] and pool.counts["misses"] == 1
        chunks(pool, first)
        chunks(pool, second)
        (cache,) = pool.cache_of()
        assert cache["bytes"] <= ONE_RUN_BYTES
        assert_same(in_process(TrainSettings()), first)
        assert_same(in_process(TrainSettings(tokenizer="character", epochs=30)), second)
    finally:
        pool.shutdown()


def test_the_cache_lets_the_least_recently_used_go_first():
    cache = workers.Cache(100)
    cache.put("a", "A", 40)
    cache.put("b", "B", 40)
    assert cache.get("a") == "A"  # now b is the least recently used
    cache.put("c", "C", 40)
    assert cache.keys() == ["a", "c"] and cache.bytes == 80 and cache.evicted == 1
    cache.put("shell of c", "S", 10, depends="c")
    cache.put("d", "D", 40)  # over: a goes (c is younger)
    assert cache.keys() == ["c", "shell of c", "d"] and cache.bytes == 90
    assert cache.get("shell of c") == "S" and cache.keys()[-2:] == ["shell of c", "c"]
    cache.pop("c")  # its shell goes with it
    assert cache.keys() == ["d"] and cache.bytes == 40
    cache.put("big", "G", 500)  # alone over the bound: kept (a chunk needs it), the rest goes
    assert cache.keys() == ["big"] and cache.bytes == 500
    cache.put("e", "E", 1)
    assert cache.keys() == ["e"] and cache.bytes == 1


def test_a_replaced_worker_gets_the_windows_again(one_worker):
    exp = Experiment(TrainSettings(epochs=80), device="cpu")
    assert one_chunk(one_worker, exp, epochs=20)["data_sent"]
    assert not one_chunk(one_worker, exp, epochs=20)["data_sent"]
    for pid in one_worker.warm_up():
        os.kill(pid, signal.SIGKILL)
    report = one_chunk(one_worker, exp, epochs=20)
    assert report["data_sent"] and report["built"]
    assert one_worker.counts["workers_replaced"] == 1
    chunks(one_worker, exp, epochs=20)
    assert_same(in_process(TrainSettings(epochs=80), chunk=20), exp)


def test_an_error_in_a_worker_is_raised_and_the_worker_goes_on(one_worker):
    with pytest.raises(workers.WorkerError, match="unknown request"):
        one_worker._ask_each({"op": "no such thing"})
    exp = Experiment(TrainSettings(epochs=20), device="cpu")
    one_chunk(one_worker, exp, epochs=20)
    assert exp.trainer.done and one_worker.counts["workers_replaced"] == 0


def test_the_cache_size_comes_from_the_environment():
    mb = 2**20
    assert workers.cache_bytes_from_env({}) == workers.DEFAULT_CACHE_MB * mb
    assert workers.cache_bytes_from_env({"MINILLM_WORKER_CACHE_MB": "8"}) == 8 * mb
    assert workers.cache_bytes_from_env({"MINILLM_WORKER_CACHE_MB": "0"}) == 0
    for bad in ("lots", "-1", "nan"):
        assert workers.cache_bytes_from_env({"MINILLM_WORKER_CACHE_MB": bad}) == \
            workers.DEFAULT_CACHE_MB * mb


def test_tensors_travel_as_their_own_bytes():
    """A weight that is a view of the fast path's flat tensor travels as its own numbers only,
    and comes back with its dtype, shape and values."""
    import torch

    exp = Experiment(TrainSettings(), device="cpu")
    weights = exp.model.state_dict()
    back = workers.loads(workers.dumps(weights))
    for name, tensor in weights.items():
        assert back[name].dtype == tensor.dtype and torch.equal(back[name], tensor), name
    total = sum(t.nbytes for t in weights.values())
    assert len(workers.dumps(weights)) < total + 4096  # no whole flat storage per view
    odd = [torch.tensor(3.5), torch.zeros(0, 4), torch.arange(6).reshape(2, 3).t(),
           torch.tensor([True, False]), torch.ones(2, dtype=torch.bfloat16)]
    for t, b in zip(odd, workers.loads(workers.dumps(odd))):
        assert b.dtype == t.dtype and b.shape == t.shape and torch.equal(b, t)


def test_a_worker_that_stops_answering_is_replaced(one_worker, monkeypatch):
    """A stuck worker (here: stopped by SIGSTOP) must not hold the chunk, and with it a
    training slot, forever: past the chunk's wall-clock bound and ANSWER_SECONDS it is killed
    and replaced, and the chunk runs again in the new one."""
    import threading

    monkeypatch.setattr(workers, "ANSWER_SECONDS", 1.0)
    exp = Experiment(TrainSettings(epochs=40), device="cpu")
    one_chunk(one_worker, exp, epochs=20)
    (stuck,) = one_worker.warm_up()
    os.kill(stuck, signal.SIGSTOP)
    try:
        reports = []
        def chunk():
            report = {}
            one_worker.train_chunk(exp.trainer, cpu_seconds=10.0, max_epochs=20,
                                   wall_seconds=2.0, report=report)
            reports.append(report)

        thread = threading.Thread(target=chunk, daemon=True)
        thread.start()
        thread.join(timeout=60)
        assert not thread.is_alive(), "the chunk still waits for the stopped worker"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(stuck, signal.SIGKILL)
    (report,) = reports
    assert report["pid"] != stuck and report["data_sent"]
    assert one_worker.counts["workers_replaced"] == 1 and exp.trainer.done
    assert_same(in_process(TrainSettings(epochs=40), chunk=20), exp)
