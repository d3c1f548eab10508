"""Training chunks in worker processes: two trainings really run at once.

All the sessions of a Streamlit server share one Python process, and a tiny model's training
is mostly Python, which runs one thread at a time: two trainings in threads only hand that
lock back and forth. Here a chunk of training (a few hundred milliseconds) goes to a small pool
of worker processes, one per core by default, and comes back:

- the session keeps its model: the `Experiment` (and its `Trainer`) stays in the server's
  process, where Generate, Attention, saving and the seat read it at any time;
- a chunk's state travels to a worker and back (`export_state` / `apply_state`): the weights,
  AdamW's averages and step, the loss histories, the best weights and loss, the batch
  generator's state, the snapshot schedule (old snapshots stay home: the worker sees only
  their epochs) and the windows' tensors. The worker builds a `Trainer` around them, trains
  epoch by epoch until the chunk's budget is spent, and sends back what changed;
- the numbers are exactly those of training in-process: same seed, same loss to the last bit
  (tests/test_workers.py: the notebook's run through the pool ends at 0.3845, equal to the
  in-process run as floats).

How the state travels matters as much as where it trains: the server's one process does the
sending for every session, so its CPU per round trip is what thirty students queue for. Sent as
torch tensors, each of a chunk's few dozen small tensors goes through torch's shared memory (a
file and a descriptor handed over each). So `pack` turns every small tensor into a numpy array
first, and the whole state travels as one pickled bytes string through the pool's pipe; only a
large tensor (a big corpus's windows, over `SHARED_MEMORY_BYTES`) still takes shared memory,
where one copy is cheaper than sending its bytes (`bench/pool_round_trip.py` measures both).

Workers start with ``forkserver`` (``spawn`` where there is none), never ``fork`` (the server
has threads), with one torch thread each. ``MINILLM_WORKERS`` sets how many (default: the
cores this process may use; 0: train in the server's own process, as before).

    pool = ChunkPool(2)
    while not exp.trainer.done:
        pool.train_chunk(exp.trainer, cpu_seconds=0.25, max_epochs=50, wall_seconds=1.0)
"""

from __future__ import annotations

import atexit
import contextlib
import math
import multiprocessing
import os
import pickle
import sys
import threading
import time
import types
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy
import torch

WORKERS_ENV = "MINILLM_WORKERS"
BATCH_ENV = "MINILLM_BATCH_SCHEDULING"
_BATCH_DONE = False  # every thread of this process marked (by batch_scheduling)


def default_workers() -> int:
    """One per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def workers_from_env(environ=os.environ) -> int:
    """``MINILLM_WORKERS``: a whole number of worker processes (0: none); else the default."""
    raw = environ.get(WORKERS_ENV, "").strip()
    if not raw:
        return default_workers()
    try:
        value = int(raw)
    except ValueError:
        return default_workers()
    return max(0, min(value, 64))


def batch_scheduling(environ=os.environ) -> bool:
    """Mark every thread of this process as batch work for Linux's scheduler (SCHED_BATCH).

    A class server is three busy processes on two cores: the server and its two workers. Under
    the normal policy, each time the server's event loop or a page's thread wakes it preempts a
    worker mid-chunk, and the worker preempts it back: thousands of switches a class, each
    costing both caches, so every chunk takes longer than it would alone. Batch threads still
    get their fair share of the CPU (the same nice value), but a wake-up no longer preempts
    whoever is running, so each runs its slice through (bench/load_test.py and the README show
    what a class gains). Threads started later inherit the policy, and so do processes,
    the workers among them, so once per process is enough; calling it again costs nothing.

    ``MINILLM_BATCH_SCHEDULING=0`` leaves the scheduler alone. True when every thread is now
    batch; False when switched off, or where there is no such policy (not Linux) or it is
    refused.
    """
    global _BATCH_DONE
    if environ.get(BATCH_ENV, "").strip() == "0" or not hasattr(os, "SCHED_BATCH"):
        return False
    if _BATCH_DONE:
        return True
    try:
        threads = [int(name) for name in os.listdir("/proc/self/task")]
    except OSError:
        threads = [0]  # no /proc: this thread alone, and the threads it starts
    ok = True
    for tid in threads:
        try:
            if os.sched_getscheduler(tid) != os.SCHED_BATCH:
                os.sched_setscheduler(tid, os.SCHED_BATCH, os.sched_param(0))
        except ProcessLookupError:  # a thread that ended meanwhile
            continue
        except OSError:  # e.g. a real-time thread, or a sandbox that forbids it
            ok = False
    _BATCH_DONE = ok
    return ok


class _Tensors:
    """What a `Trainer` reads of a dataset, without its tokenizer (tensors travel cheaply)."""

    def __init__(self, X, Y, every):
        self.X, self.Y, self._every = X, Y, every

    def __len__(self) -> int:
        return len(self.Y)

    def every_position_targets(self):
        if self._every is None:
            raise ValueError("this run does not train on every position")
        return self._every


def _data_of(dataset, every_position: bool) -> dict | None:
    if dataset is None:
        return None
    every = dataset.every_position_targets() if every_position else None
    return {"X": dataset.X, "Y": dataset.Y, "every": every}


def _model_state(model) -> dict:
    """What rebuilds `model` in a worker (`_model`): its config and a copy of its weights."""
    return {"config": model.config,
            "weights": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}


def export_state(trainer) -> dict:
    """Everything a worker needs to go on with `trainer`'s run (tensors are copied by pickling)."""
    model = trainer.model
    every = model.config.loss_on == "every"
    return {
        **_model_state(model),  # copies, not views of the flat weights
        "optimizer": trainer.optimizer.state_dict(),
        "lr": trainer.lr, "epochs": trainer.epochs, "batch_size": trainer.batch_size,
        "hand_gradients": trainer.fast is not None,
        "history": list(trainer.history),
        "valid_history": list(trainer.valid_history),
        "eval_every": trainer.eval_every,
        "snapshot_every": trainer.snapshot_every,
        "snapshot_epochs": sorted(trainer.snapshots),
        "best": [t.detach().clone() for t in trainer._best],
        "best_loss": trainer._best_loss,
        "batches": trainer._batches.get_state(),
        "stopped_reason": trainer.stopped_reason,
        "data": _data_of(trainer.dataset, every),
        "valid": _data_of(trainer.valid, every),
    }


def _model(config, weights: dict):
    """The server's model in this (worker) process, from `_model_state`'s config and weights."""
    from minillm.model import MiniTransformer

    model = MiniTransformer(config)
    model.load_state_dict(weights)
    return model


def _rebuild(state: dict):
    """A `Trainer` in this (worker) process, in exactly the state `export_state` saw."""
    from minillm.train import Trainer

    model = _model(state["config"], state["weights"])
    data = state["data"]
    trainer = Trainer(
        model, _Tensors(data["X"], data["Y"], data["every"]), lr=state["lr"],
        epochs=state["epochs"], threads=1, snapshot_every=state["snapshot_every"],
        hand_gradients=state["hand_gradients"], batch_size=state["batch_size"],
        eval_every=state["eval_every"],
    )
    valid = state["valid"]
    trainer.valid = None if valid is None else _Tensors(valid["X"], valid["Y"], valid["every"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.history = list(state["history"])
    trainer.valid_history = list(state["valid_history"])
    trainer.snapshot_every = state["snapshot_every"]
    trainer.snapshots = {epoch: None for epoch in state["snapshot_epochs"]}  # they stay home
    with torch.no_grad():
        for mine, theirs in zip(trainer._best, state["best"]):
            mine.copy_(theirs)
    trainer._best_loss = state["best_loss"]
    trainer._batches.set_state(state["batches"])
    trainer.stopped_reason = state["stopped_reason"]
    return trainer


def _result(trainer, before: int) -> dict:
    return {
        "weights": {k: v.detach().clone() for k, v in trainer.model.state_dict().items()},
        "optimizer": trainer.optimizer.state_dict(),
        "new_history": trainer.history[before:],
        "valid_history": list(trainer.valid_history),
        "snapshot_every": trainer.snapshot_every,
        "snapshots": dict(trainer.snapshots),  # None: an old one the server has
        "best": [t.detach().clone() for t in trainer._best],
        "best_loss": trainer._best_loss,
        "batches": trainer._batches.get_state(),
        "stopped_reason": trainer.stopped_reason,
        "seconds": trainer.seconds,
    }


SHARED_MEMORY_BYTES = 1 << 20  # a tensor at least this large travels through shared memory


class _Array:
    """A tensor's numbers as a numpy array: pickled as one buffer, no shared-memory file."""

    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array

    def __reduce__(self):
        return _Array, (self.array,)


class _Large:
    """Where a large tensor sits in the list that travels beside the bytes."""

    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index

    def __reduce__(self):
        return _Large, (self.index,)


# dtypes numpy holds as they are (not bfloat16, say: such a tensor travels as a tensor)
_NUMPY_DTYPES = frozenset({torch.float64, torch.float32, torch.float16, torch.int64,
                           torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool})


def _walk(obj, leaf):
    """`obj` with `leaf` applied to everything but the dicts, lists and tuples it is made of."""
    if isinstance(obj, dict):
        return {key: _walk(value, leaf) for key, value in obj.items()}
    if isinstance(obj, list):
        return [_walk(value, leaf) for value in obj]
    if isinstance(obj, tuple):
        return tuple(_walk(value, leaf) for value in obj)
    return leaf(obj)


def pack(obj, large: list) -> object:
    """`obj` with every tensor replaced: small ones by their numbers as numpy arrays, large
    ones (or those numpy cannot hold) by their place in `large`. Dicts, lists and tuples are
    walked; anything else is left as it is (it pickles as usual)."""
    def leaf(item):
        if not isinstance(item, torch.Tensor):
            return item
        tensor = item.detach()
        if tensor.device.type == "cpu" and tensor.dtype in _NUMPY_DTYPES and (
                tensor.numel() * tensor.element_size() < SHARED_MEMORY_BYTES):
            return _Array(tensor.numpy())
        large.append(tensor)
        return _Large(len(large) - 1)

    return _walk(obj, leaf)


def unpack(obj, large: list) -> object:
    """What `pack` was given, with tensors of their own (never views of the pickle's bytes)."""
    def leaf(item):
        if isinstance(item, _Array):
            array = item.array
            if not array.flags.writeable:  # a pickle's arrays are read-only views of its bytes
                array = numpy.array(array)
            return torch.from_numpy(array)
        return large[item.index] if isinstance(item, _Large) else item

    return _walk(obj, leaf)


def dumps(obj) -> tuple[bytes, list]:
    """`obj` as one bytes string and the list of its large tensors (see `pack`)."""
    large: list = []
    return pickle.dumps(pack(obj, large), protocol=pickle.HIGHEST_PROTOCOL), large


def loads(data: bytes, large: list) -> object:
    return unpack(pickle.loads(data), large)


def run_packed_chunk(data: bytes, large: list, cpu_seconds: float, max_epochs: int,
                     wall_seconds: float) -> tuple[bytes, list]:
    """`run_chunk` for a state sent by `dumps`; its result sent back the same way."""
    return dumps(run_chunk(loads(data, large), cpu_seconds, max_epochs, wall_seconds))


def run_chunk(state: dict, cpu_seconds: float, max_epochs: int, wall_seconds: float) -> dict:
    """In a worker: go on with the run for one chunk (epoch by epoch until a budget is spent)."""
    started = time.monotonic()
    trainer = _rebuild(state)
    before = trainer.epoch
    trainer.seconds = 0.0
    deadline = time.thread_time() + cpu_seconds
    wall_deadline = time.monotonic() + wall_seconds
    trained = 0
    while (not trainer.done and trained < max_epochs and time.thread_time() < deadline
           and time.monotonic() < wall_deadline):
        trainer.run(1)
        trained += 1
    result = _result(trainer, before)
    result["worker"] = (os.getpid(), started, time.monotonic())  # who trained it, and when
    return result


def run_packed_draw(data: bytes, large: list) -> tuple[list[list[int]], list[str]]:
    """In a worker: `minillm.inspect.draw_batch` with a copy of the server's model."""
    from minillm.inspect import draw_batch

    job = loads(data, large)
    return draw_batch(_model(job.pop("config"), job.pop("weights")), **job)


def apply_state(trainer, result: dict) -> int:
    """Put a chunk's result into the server's `trainer`; how many epochs it trained."""
    with torch.no_grad():
        trainer.model.load_state_dict(result["weights"])  # in place: the fast path's views too
        for mine, theirs in zip(trainer._best, result["best"]):
            mine.copy_(theirs)
    trainer.optimizer.load_state_dict(result["optimizer"])
    old = trainer.snapshots
    trainer.snapshots = {epoch: old[epoch] if weights is None else weights
                         for epoch, weights in result["snapshots"].items()}
    trainer.snapshot_every = result["snapshot_every"]
    trainer._best_loss = result["best_loss"]
    trainer._batches.set_state(result["batches"])
    trainer.valid_history = result["valid_history"]
    trainer.stopped_reason = result["stopped_reason"]
    trainer.seconds += result["seconds"]
    trainer.history.extend(result["new_history"])  # last: a page sees a whole epoch or none
    return len(result["new_history"])


def _start_worker() -> None:
    batch_scheduling()  # usually inherited already; this holds whoever started the pool
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set (a forkserver's child inherits it)
        pass


def _ping(wait: float = 0.0) -> int:
    time.sleep(wait)
    return os.getpid()


@contextlib.contextmanager
def _no_main_module():
    """While workers start: no ``__main__`` for them to run.

    A new process started by ``spawn`` or ``forkserver`` first runs the parent's
    ``__main__`` module again (multiprocessing's "preparation"). In a Streamlit server that
    is the page script being run (Streamlit sets ``sys.modules["__main__"]`` to it), so every
    worker would run a page in bare mode, and a page that needs a session crashes the worker.
    A main module without a file or spec is one multiprocessing leaves alone. Every worker is
    started here at once, so a pool never starts one later from another thread.
    """
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


def _context():
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        # imported once by the fork server, so every worker starts with them (torch._dynamo:
        # what the first AdamW imports, seconds of it)
        context.set_forkserver_preload(["torch", "torch._dynamo", "minillm.workers",
                                        "minillm.train", "minillm.handgrad"])
        return context
    return multiprocessing.get_context("spawn")


class ChunkPool:
    """A small pool of worker processes that train chunks (thread-safe; started lazily)."""

    def __init__(self, workers: int):
        self.workers = max(1, workers)
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                executor = ProcessPoolExecutor(
                    max_workers=self.workers, mp_context=_context(), initializer=_start_worker)
                with _no_main_module():  # every worker starts now, none later (see there)
                    for _ in range(self.workers):
                        executor.submit(_ping)
                self._executor = executor
            return self._executor

    def warm_up(self) -> list[int]:
        """Start every worker now (each imports torch once); their process ids."""
        pool = self._pool()
        futures = [pool.submit(_ping, 0.2) for _ in range(self.workers)]
        return sorted({future.result() for future in futures})

    def train_chunk(self, trainer, cpu_seconds: float, max_epochs: int,
                    wall_seconds: float) -> int:
        """Train one chunk of `trainer`'s run in a worker; the epochs trained. A worker that
        died (killed, out of memory) is replaced and the chunk runs once more."""
        if trainer.done or max_epochs <= 0:
            return 0
        data, large = dumps(export_state(trainer))
        result = loads(*self._run(run_packed_chunk, data, large, cpu_seconds, max_epochs,
                                  wall_seconds))
        return apply_state(trainer, result)

    def sample_batch(self, model, dataset, prompt: str, n: int, max_new_tokens: int,
                     temperature: float = 1.0, top_k: int | None = None, seed: int = 0):
        """`minillm.inspect.sample_batch`, drawn in a worker: the same samples, token for
        token. The server's one process serves every page of the class, so the batch's
        forward passes (the heaviest work of Generate's page) go where the cores are free;
        the prompt is encoded and the texts decoded here, where the tokenizer is."""
        from minillm import inspect

        inspect.check_batch_settings(n, max_new_tokens, temperature, top_k)
        prompt_ids = inspect.batch_prompt_ids(dataset, prompt)
        job = {**_model_state(model), "prompt_ids": prompt_ids, "block_size": dataset.block_size,
               "pad_id": dataset.pad_id, "eos_id": dataset.eos_id, "n": n,
               "max_new_tokens": max_new_tokens, "temperature": temperature, "top_k": top_k,
               "seed": seed}
        new_ids, stopped = self._run(run_packed_draw, *dumps(job))
        return inspect.batch_samples(dataset, prompt_ids, new_ids, stopped)

    def _run(self, fn, *args):
        """`fn(*args)` in a worker, its result. A worker that died (killed, out of memory)
        is replaced and the job runs once more."""
        for attempt in (1, 2):
            try:
                return self._pool().submit(fn, *args).result()
            except BrokenProcessPool:
                self.shutdown()
                if attempt == 2:
                    raise

    def shutdown(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


_SHARED: ChunkPool | None = None
_SHARED_LOCK = threading.Lock()


def shared_pool() -> ChunkPool | None:
    """The process's pool (``MINILLM_WORKERS`` workers), or None when it is 0."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None or _SHARED.workers != workers_from_env():
            if _SHARED is not None:
                _SHARED.shutdown()
            n = workers_from_env()
            _SHARED = ChunkPool(n) if n > 0 else None
            if _SHARED is not None:
                atexit.register(_SHARED.shutdown)
        return _SHARED


def can_travel(trainer) -> bool:
    """Whether this run can train in a worker: on the CPU, and not stopped."""
    return trainer.device.type == "cpu" and not trainer.done and math.isfinite(trainer.lr)
