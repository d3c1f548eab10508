"""Training chunks in worker processes (minillm.workers): the same numbers as in-process, two
trainings at the same moment in two processes, a killed worker replaced, the app's hook."""

from __future__ import annotations

import os
import signal
import threading

import pytest
import torch

from conftest import ROOT
from minillm import workers
from minillm.experiment import Experiment, TrainSettings

NOTEBOOK_LOSS = 0.3845


@pytest.fixture(scope="module")
def pool():
    chunk_pool = workers.ChunkPool(2)
    chunk_pool.warm_up()
    yield chunk_pool
    chunk_pool.shutdown()


def in_process(settings: TrainSettings, chunk: int = 37) -> Experiment:
    exp = Experiment(settings, device="cpu")
    while not exp.trainer.done:
        exp.trainer.run(chunk)
    return exp


def pooled(pool, settings: TrainSettings, chunk: int = 37) -> Experiment:
    exp = Experiment(settings, device="cpu")
    while not exp.trainer.done:
        pool.train_chunk(exp.trainer, cpu_seconds=10.0, max_epochs=chunk, wall_seconds=30.0)
    return exp


def identical(x: torch.Tensor, y: torch.Tensor) -> bool:
    """Bit for bit the same numbers (NaN equal to NaN: a diverged run's snapshots hold them)."""
    return x.shape == y.shape and torch.equal(torch.nan_to_num(x, nan=7.0), torch.nan_to_num(y, nan=7.0)) \
        and torch.equal(x.isnan(), y.isnan())


def assert_same(a: Experiment, b: Experiment) -> None:
    assert a.trainer.history == b.trainer.history  # floats, exactly
    assert a.trainer.valid_history == b.trainer.valid_history
    assert a.trainer.stopped_reason == b.trainer.stopped_reason
    for (name, x), y in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert identical(x, y), name
    assert sorted(a.trainer.snapshots) == sorted(b.trainer.snapshots)
    for epoch, weights in a.trainer.snapshots.items():
        assert all(identical(w, b.trainer.snapshots[epoch][k]) for k, w in weights.items())
    assert a.summary()["loss"] == b.summary()["loss"]


def test_the_notebooks_run_through_the_pool_ends_at_0_3845(pool):
    exp = pooled(pool, TrainSettings())
    assert round(exp.summary()["loss"], 4) == NOTEBOOK_LOSS
    assert_same(in_process(TrainSettings()), exp)
    # what the pages read is home: the model, the optimizer, snapshots (Attention's replay)
    assert exp.trainer.epoch == 300 and len(exp.trainer.snapshots) > 3


@pytest.mark.parametrize("settings", [
    TrainSettings(loss_on="every", causal=True, epochs=60),  # autograd, every position
    TrainSettings(batch_size=8, epochs=60),  # seeded mini-batches: the generator travels
    TrainSettings(n_layers=2, epochs=40),
    TrainSettings(lr=1000.0, epochs=40),  # NaN: stopped, best weights put back
    TrainSettings(tokenizer="character", epochs=30, eos=True),
], ids=["every", "batches", "two-layers", "nan", "characters"])
def test_other_runs_are_identical_through_the_pool(pool, settings):
    assert_same(in_process(settings, chunk=13), pooled(pool, settings, chunk=13))


def test_two_trainings_run_at_the_same_moment_in_two_processes(pool):
    pool.warm_up()
    experiments = [Experiment(TrainSettings(epochs=2000, seed=s), device="cpu") for s in (1, 2)]
    spans = {}

    def train(exp):
        state = workers.export_state(exp.trainer)
        result = pool._pool().submit(workers.run_chunk, state, 0.6, 2000, 10.0).result()
        workers.apply_state(exp.trainer, result)
        spans[id(exp)] = result["worker"]

    threads = [threading.Thread(target=train, args=(exp,)) for exp in experiments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (pid_a, start_a, end_a), (pid_b, start_b, end_b) = spans.values()
    assert pid_a != pid_b and pid_a != os.getpid()
    assert start_a < end_b and start_b < end_a, "the two chunks did not overlap in time"
    assert all(exp.trainer.epoch > 0 for exp in experiments)


def test_a_killed_worker_is_replaced(pool):
    exp = Experiment(TrainSettings(epochs=60), device="cpu")
    pool.train_chunk(exp.trainer, cpu_seconds=10, max_epochs=20, wall_seconds=30)
    for pid in pool.warm_up():
        os.kill(pid, signal.SIGKILL)
    pool.train_chunk(exp.trainer, cpu_seconds=10, max_epochs=40, wall_seconds=30)
    assert exp.trainer.done
    assert_same(in_process(TrainSettings(epochs=60), chunk=20), exp)


def test_the_number_of_workers_comes_from_the_environment():
    assert workers.workers_from_env({}) == workers.default_workers() >= 1
    assert workers.workers_from_env({"MINILLM_WORKERS": "0"}) == 0
    assert workers.workers_from_env({"MINILLM_WORKERS": "3"}) == 3
    assert workers.workers_from_env({"MINILLM_WORKERS": "many"}) == workers.default_workers()
    assert workers.workers_from_env({"MINILLM_WORKERS": "-2"}) == 0


def test_the_app_trains_through_the_pool_and_in_process(monkeypatch):
    from ui import model_state

    monkeypatch.setenv("MINILLM_WORKERS", "2")
    assert workers.shared_pool() is not None and workers.shared_pool().workers == 2
    exp = Experiment(TrainSettings(), device="cpu")
    while not exp.trainer.done:
        assert model_state.train_chunk(exp, seconds=5.0, max_epochs=100, wait=5.0)
    assert round(exp.summary()["loss"], 4) == NOTEBOOK_LOSS
    monkeypatch.setenv("MINILLM_WORKERS", "0")
    assert workers.shared_pool() is None
    other = Experiment(TrainSettings(), device="cpu")
    while not other.trainer.done:
        assert model_state.train_chunk(other, seconds=5.0, max_epochs=100, wait=5.0)
    assert other.trainer.history == exp.trainer.history


def test_workers_never_run_the_servers_main_script(tmp_path, monkeypatch):
    """Streamlit puts the page being run in sys.modules["__main__"]; a worker must not run it."""
    import sys
    import types

    marker = tmp_path / "ran"
    script = tmp_path / "page.py"
    script.write_text(f"open({str(marker)!r}, 'w').write('ran')\nraise SystemExit('a page')\n")
    page = types.ModuleType("__main__")
    page.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", page)
    fresh = workers.ChunkPool(1)
    try:
        exp = Experiment(TrainSettings(epochs=20), device="cpu")
        fresh.train_chunk(exp.trainer, cpu_seconds=10, max_epochs=20, wall_seconds=30)
        assert exp.trainer.done
    finally:
        fresh.shutdown()
    assert not marker.exists()
    assert sys.modules["__main__"] is page


def test_a_chunks_state_travels_as_one_bytes_string():
    """Small tensors go as numpy arrays inside one pickle, not one shared-memory file each."""
    exp = Experiment(TrainSettings(), device="cpu")
    exp.trainer.run(3)
    data, large = workers.dumps(workers.export_state(exp.trainer))
    assert isinstance(data, bytes) and large == []
    back = workers.loads(data, large)
    for (name, x), y in zip(exp.model.state_dict().items(), back["weights"].values()):
        assert identical(x, y), name
        assert y.data_ptr() != x.data_ptr()
        y.add_(1.0)  # a tensor of its own: writable, and not the pickle's bytes
    assert back["history"] == exp.trainer.history
    assert back["optimizer"]["state"][0]["exp_avg"].equal(
        exp.trainer.optimizer.state_dict()["state"][0]["exp_avg"])


def test_large_and_unusual_tensors_travel_as_tensors():
    big = torch.arange(workers.SHARED_MEMORY_BYTES // 8 + 1, dtype=torch.int64)
    odd = torch.ones(3, dtype=torch.bfloat16)
    small = torch.tensor([[1.5, -2.0]]).t()  # not contiguous
    data, large = workers.dumps({"big": big, "odd": [odd], "small": (small, 7, "text")})
    assert [t.data_ptr() for t in large] == [big.data_ptr(), odd.data_ptr()]
    back = workers.loads(data, large)
    assert torch.equal(back["big"], big) and torch.equal(back["odd"][0], odd)
    assert torch.equal(back["small"][0], small) and back["small"][1:] == (7, "text")


def test_a_run_with_large_windows_is_identical_through_the_pool(pool):
    """A corpus whose windows pass the shared-memory size: the windows take shared memory,
    the rest the bytes, and the numbers are still exactly the in-process ones."""
    lines = tuple(f"w{i % 97} w{(i * 7) % 89} w{(i * 3) % 83} end" for i in range(9000))
    settings = TrainSettings(lines=lines, batch_size=16, epochs=12, block_size=16)
    exp = Experiment(settings, device="cpu")
    assert exp.trainer.dataset.X.numel() * 8 >= workers.SHARED_MEMORY_BYTES
    assert_same(in_process(settings, chunk=5), pooled(pool, settings, chunk=5))


def test_the_app_has_two_slots_per_worker():
    from ui import model_state

    assert model_state.default_slots(2) == 4 and model_state.default_slots(0) == 1


def test_a_busy_class_gets_fewer_longer_chunks_in_the_workers(monkeypatch):
    """While others wait in line, a worker's chunk is longer (fewer round trips and redraws);
    alone, or in the server's own process, a chunk stays short (the curve moves smoothly)."""
    from ui import model_state

    short = model_state.CHUNK_MAX_EPOCHS
    for workers_env, line, most in (("2", 3, model_state.BUSY_POOL_EPOCHS * short),
                                    ("2", 0, short), ("0", 3, short)):
        monkeypatch.setenv("MINILLM_WORKERS", workers_env)
        monkeypatch.setattr(model_state.FairSlots, "waiting", lambda self, n=line: n)
        exp = Experiment(TrainSettings(epochs=2000), device="cpu")
        assert model_state.train_chunk(exp, wait=5.0)  # the default size, as the page asks
        assert exp.trainer.epoch <= most
        if most > short:
            assert exp.trainer.epoch > short


def test_the_first_clicks_of_a_class_get_the_long_chunks_too(monkeypatch):
    """Thirty clicks at once: the first pages to reach a slot find nobody in line yet (the
    others are still drawing their pages). Their runs count from the click, so those first
    students get the long chunks too, instead of short ones that send them to the back of the
    line after each (in the load test the first four to click finished last)."""
    from ui import model_state

    monkeypatch.setenv("MINILLM_WORKERS", "2")
    monkeypatch.setattr(model_state.FairSlots, "waiting", lambda self: 0)
    short = model_state.CHUNK_MAX_EPOCHS
    for others, most in ((0, short), (model_state.training_slots().size, None)):
        running = model_state.TrainingNow()
        monkeypatch.setattr(model_state, "training_now", lambda running=running: running)
        # kept alive: runs are counted by id, and a dropped one's id can come back
        classmates = [Experiment(TrainSettings(), device="cpu").trainer for _ in range(others)]
        for trainer in classmates:
            running.note(trainer)
        assert running.count() == others
        exp = Experiment(TrainSettings(epochs=2000), device="cpu")
        assert model_state.train_chunk(exp, wait=5.0)
        if most is None:
            assert exp.trainer.epoch > short
        else:
            assert exp.trainer.epoch <= most
        assert running.count() == others + 1  # not done: it still counts
        done = Experiment(TrainSettings(epochs=3), device="cpu")
        assert model_state.train_chunk(done, wait=5.0) and done.trainer.done
        assert running.count() == others + 1  # a finished run counts no more


def headline(page) -> list[str]:
    """Generate's "N of M sentences are new" line(s) on an AppTest page."""
    return [m.value for m in page.markdown if "sentences are new" in m.value]


@pytest.mark.parametrize("settings, prompt, draw", [
    (TrainSettings(epochs=60), "the cat", dict(n=20, max_new_tokens=40, seed=42)),
    (TrainSettings(epochs=60, eos=True), "the dog", dict(n=20, max_new_tokens=40, top_k=3,
                                                         temperature=0.7, seed=5)),
    (TrainSettings(tokenizer="character", epochs=30, eos=True, n_layers=2), "th",
     dict(n=7, max_new_tokens=60, temperature=1.5, seed=0)),
    (TrainSettings(epochs=20), "", dict(n=1, max_new_tokens=10, top_k=1, seed=3)),
], ids=["words", "eos-top-k", "characters-two-layers", "greedy-no-prompt"])
def test_a_batch_drawn_in_a_worker_is_the_same_batch(pool, settings, prompt, draw):
    from minillm import inspect

    exp = in_process(settings)
    here = inspect.sample_batch(exp.model, exp.dataset, prompt, **draw)
    there = pool.sample_batch(exp.model, exp.dataset, prompt, **draw)
    assert there == here
    assert len({s.text for s in here}) > 1 or draw["n"] == 1  # a real batch, not one text
    other = pool.sample_batch(exp.model, exp.dataset, prompt, **{**draw, "seed": draw["seed"] + 1})
    assert other == inspect.sample_batch(exp.model, exp.dataset, prompt,
                                         **{**draw, "seed": draw["seed"] + 1})


def test_a_batch_with_bad_settings_is_refused_before_it_travels(pool, monkeypatch):
    exp = in_process(TrainSettings(epochs=20))
    monkeypatch.setattr(pool, "_run", lambda *a: pytest.fail("sent to a worker"))
    with pytest.raises(ValueError, match="temperature"):
        pool.sample_batch(exp.model, exp.dataset, "the", n=3, max_new_tokens=5, temperature=0)
    with pytest.raises(ValueError, match="top-k"):
        pool.sample_batch(exp.model, exp.dataset, "the", n=3, max_new_tokens=5, top_k=0)


def test_generates_batch_goes_to_the_pool_when_there_is_one(monkeypatch):
    from conftest import page_with

    from ui import originality

    exp = in_process(TrainSettings(epochs=60, eos=True))  # EOS: finished sentences to judge
    drawn = []
    real = workers.ChunkPool.sample_batch

    def spy(self, *args, **kwargs):
        drawn.append(self.workers)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(workers.ChunkPool, "sample_batch", spy)
    monkeypatch.setenv("MINILLM_WORKERS", "1")
    pooled_page = page_with("pages/generate.py", exp)
    assert drawn == [1]
    monkeypatch.setenv("MINILLM_WORKERS", "0")
    at = page_with("pages/generate.py", exp)
    assert drawn == [1]  # in this process this time
    assert len(headline(at)) == 1 and headline(at) == headline(pooled_page)  # the same batch
    assert originality.KEPT in at.session_state


def test_generate_draws_its_batch_here_when_the_workers_cannot(monkeypatch):
    from concurrent.futures.process import BrokenProcessPool

    from conftest import page_with

    def broken(self, *args):
        raise BrokenProcessPool("every worker died")

    exp = in_process(TrainSettings(epochs=60, eos=True))
    monkeypatch.setenv("MINILLM_WORKERS", "0")
    here = page_with("pages/generate.py", exp)
    monkeypatch.setenv("MINILLM_WORKERS", "1")
    monkeypatch.setattr(workers.ChunkPool, "_run", broken)
    at = page_with("pages/generate.py", exp)
    assert len(headline(at)) == 1 and headline(at) == headline(here) and not at.exception


BATCH_CHECK = """
import os, threading
os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))  # whatever pytest's process is
from minillm import workers
before = threading.Thread(target=threading.Event().wait, args=(30,), daemon=True)
before.start()
done = workers.batch_scheduling()
after = []
later = threading.Thread(target=lambda: after.append(os.sched_getscheduler(0)))
later.start()
later.join()
policies = set()
for tid in os.listdir("/proc/self/task"):
    try:
        policies.add(os.sched_getscheduler(int(tid)))
    except ProcessLookupError:  # a thread that ended meanwhile
        pass
policies = sorted(policies)
print(done, policies, after[0], workers.batch_scheduling())
"""


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="no SCHED_BATCH (not Linux)")
@pytest.mark.parametrize("switch", [None, "1", "0"])
def test_batch_scheduling_marks_every_thread_and_can_be_switched_off(switch):
    """Every thread that exists (a waiting one too) and every thread started after it is batch
    work; MINILLM_BATCH_SCHEDULING=0 leaves them as they were. In a new process, since the
    policy is the process's own."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != workers.BATCH_ENV}
    env["PYTHONPATH"] = str(ROOT)  # as tests/test_store.py's killed process
    if switch is not None:
        env[workers.BATCH_ENV] = switch
    out = subprocess.run([sys.executable, "-c", BATCH_CHECK], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout.split(" ", 1)
    batch, other = os.SCHED_BATCH, os.SCHED_OTHER
    if switch == "0":
        assert out == ["False", f"[{other}] {other} False\n"]
    else:
        assert out == ["True", f"[{batch}] {batch} True\n"]


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="no SCHED_BATCH (not Linux)")
def test_the_workers_are_batch_work(pool):
    for pid in pool.warm_up():
        assert os.sched_getscheduler(pid) == os.SCHED_BATCH


def test_the_app_makes_its_server_batch_work(monkeypatch):
    from conftest import run_app

    calls = []
    monkeypatch.setattr(workers, "batch_scheduling", lambda: calls.append(1) or True)
    at = run_app()
    assert not at.exception
    assert calls
