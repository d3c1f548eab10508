"""Training chunks in worker processes: two trainings really run at once.

All the sessions of a Streamlit server share one Python process, and a tiny model's training
is mostly Python, which runs one thread at a time: two trainings in threads only hand that
lock back and forth. Here a chunk of training (a few hundred milliseconds) goes to a small pool
of worker processes, one per core by default, and comes back:

- the session keeps its model: the `Experiment` (and its `Trainer`) stays in the server's
  process, where Generate, Attention, saving and the seat read it at any time;
- a chunk carries only what training changes (`export_state` / `apply_state`): the weights,
  AdamW's averages and step, the loss histories, the best weights and loss, the batch
  generator's state and the snapshot schedule (old snapshots stay home: the worker sees only
  their epochs). The worker trains epoch by epoch until the chunk's budget is spent and sends
  back what changed;
- what does not change during a run, its windows' tensors, goes to a worker once: the chunk
  names them by a hash of their content (`data_key`), and each worker keeps them, together
  with a `Trainer` built around them (the "shell": model, fast path, optimizer), in a cache
  bounded in bytes (`MINILLM_WORKER_CACHE_MB`, least recently used out first). A chunk loads
  its state into the shell in place, so a worker never rebuilds a trainer for a run it has
  seen. Runs with the same settings on the same text share one shell (everything a shell holds
  between chunks is overwritten by the next chunk's state). A run goes back to the worker
  that trained it last when that one is free, else to one that has its windows, else to any;
  a worker that lost them (evicted, restarted) says so and gets them again. A changed run
  cannot reuse stale windows: a different content is a different key, and a tensor changed in
  place is hashed again (its version counter moved);
- tensors travel as their raw bytes in one pickle over a pipe per worker, not through
  torch's shared-memory files (one file and a file-descriptor hand-over for every tensor);
- the numbers are exactly those of training in-process: same seed, same loss to the last bit
  (tests/test_workers.py: the notebook's run through the pool ends at 0.3845, equal to the
  in-process run as floats).

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
import faulthandler
import hashlib
import io
import logging
import math
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import traceback
import types
import weakref
from collections import OrderedDict
from concurrent.futures.process import BrokenProcessPool

import torch

log = logging.getLogger(__name__)

WORKERS_ENV = "MINILLM_WORKERS"
CACHE_ENV = "MINILLM_WORKER_CACHE_MB"
DEFAULT_CACHE_MB = 64  # per worker: many default runs' shells, or a few big pasted texts


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


def cache_bytes_from_env(environ=os.environ) -> int:
    """``MINILLM_WORKER_CACHE_MB``: each worker's cache of windows and shells, in bytes."""
    raw = environ.get(CACHE_ENV, "").strip()
    try:
        value = float(raw) if raw else DEFAULT_CACHE_MB
    except ValueError:
        value = DEFAULT_CACHE_MB
    if not math.isfinite(value) or value < 0:
        value = DEFAULT_CACHE_MB
    return int(min(value, 1 << 20) * 2**20)


# ---------------------------------------------------------------------------------------------
# Tensors as raw bytes
# ---------------------------------------------------------------------------------------------


def _tensor(dtype: str, shape: tuple, raw) -> torch.Tensor:
    """A tensor from `_Pickler`'s bytes (the unpickled bytearray is its memory: no copy)."""
    kind = getattr(torch, dtype)
    if len(raw) == 0:
        return torch.empty(shape, dtype=kind)
    return torch.frombuffer(raw, dtype=torch.uint8).view(kind).reshape(shape)


class _Pickler(pickle.Pickler):
    """Pickles a tensor as dtype, shape and its bytes (a view: only its own part of a storage).

    torch's own pickling goes through ``torch.save`` for each storage, and between processes
    through a shared-memory file per tensor; a chunk's few small tensors cost far more that way
    than the bytes themselves.
    """

    def reducer_override(self, obj):
        if isinstance(obj, torch.Tensor):
            t = obj.detach()
            if t.device.type != "cpu":
                t = t.cpu()
            t = t.contiguous()
            raw = t.reshape(-1).view(torch.uint8).numpy()
            return _tensor, (str(t.dtype).removeprefix("torch."), tuple(t.shape),
                             pickle.PickleBuffer(raw))
        return NotImplemented


def dumps(obj) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=5).dump(obj)
    return buffer.getvalue()


loads = pickle.loads


# ---------------------------------------------------------------------------------------------
# What travels: the run's windows (once), its shell's settings and its state (every chunk)
# ---------------------------------------------------------------------------------------------


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

    def nbytes(self) -> int:
        return sum(t.nbytes for t in (self.X, self.Y, self._every) if t is not None)


def _data_of(dataset, every_position: bool) -> dict | None:
    if dataset is None:
        return None
    every = dataset.every_position_targets() if every_position else None
    return {"X": dataset.X, "Y": dataset.Y, "every": every}


def data_payload(trainer) -> dict:
    """The run's windows, as a worker needs them (training and held-out)."""
    every = trainer.model.config.loss_on == "every"
    return {"data": _data_of(trainer.dataset, every), "valid": _data_of(trainer.valid, every)}


def _hash_payload(payload: dict) -> str:
    digest = hashlib.blake2b(digest_size=20)
    for part in ("data", "valid"):
        tensors = payload[part]
        digest.update(part.encode() + (b"-" if tensors is None else b"+"))
        for name in ("X", "Y", "every"):
            t = None if tensors is None else tensors[name]
            if t is None:
                digest.update(b"none;")
                continue
            t = t.detach().cpu().contiguous()
            digest.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def _payload_bytes(payload: dict) -> int:
    return sum(t.nbytes for part in payload.values() if part is not None
               for t in part.values() if t is not None)


_KEYS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # trainer -> its data key
_KEYS_LOCK = threading.Lock()


def _watched(trainer) -> list:
    """The objects a run's data key depends on, with the version of each tensor."""
    parts = []
    for dataset in (trainer.dataset, trainer.valid):
        parts.append(dataset)
        for name in ("X", "Y"):
            t = getattr(dataset, name, None) if dataset is not None else None
            parts.append(t)
            parts.append(None if t is None else t._version)
    parts.append(trainer.model.config.loss_on)
    return parts


def _same(a: list, b: list) -> bool:
    return len(a) == len(b) and all(x is y or (type(x) is type(y) and isinstance(x, (int, str))
                                               and x == y) for x, y in zip(a, b))


def data_key(trainer) -> tuple[str, int]:
    """(a hash of the run's windows, their bytes): computed once per run, again only when its
    datasets were replaced or a tensor of theirs changed in place."""
    watched = _watched(trainer)
    with _KEYS_LOCK:
        known = _KEYS.get(trainer)
    if known is not None:
        refs, key, size = known
        if _same([r() if isinstance(r, weakref.ref) else r for r in refs], watched):
            return key, size
    payload = data_payload(trainer)
    key, size = _hash_payload(payload), _payload_bytes(payload)

    def ref(x):
        try:
            return weakref.ref(x)
        except TypeError:  # ints and strings: compared by value
            return x

    with _KEYS_LOCK:
        _KEYS[trainer] = ([ref(x) for x in watched], key, size)
    return key, size


def shell_spec(trainer) -> dict:
    """What a worker builds a shell from (with the windows): the settings a run never changes."""
    return {
        "config": trainer.model.config,
        "lr": trainer.lr, "epochs": trainer.epochs, "batch_size": trainer.batch_size,
        "hand_gradients": trainer.fast is not None,
        "eval_every": trainer.eval_every,
    }


def export_state(trainer) -> dict:
    """What training changes, for a worker to go on with `trainer`'s run (copied when pickled)."""
    return {
        "weights": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "history": trainer.history,
        "valid_history": trainer.valid_history,
        "snapshot_every": trainer.snapshot_every,
        "snapshot_epochs": sorted(trainer.snapshots),
        "best": trainer._best,
        "best_loss": trainer._best_loss,
        "batches": trainer._batches.get_state(),
        "stopped_reason": trainer.stopped_reason,
    }


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


# ---------------------------------------------------------------------------------------------
# In a worker: the cache, the shell, one chunk
# ---------------------------------------------------------------------------------------------


class Cache:
    """Least recently used out first, bounded in bytes; an entry may depend on another (a
    shell on its windows), and goes when that one goes. The entry being put stays even when it
    alone is over the bound (the chunk needs it), so the cache holds at most the bound or one
    run's entries."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max(0, int(max_bytes))
        self._entries: OrderedDict = OrderedDict()  # key -> (value, nbytes, depends on)
        self.bytes = 0
        self.evicted = 0

    def __contains__(self, key) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> list:
        return list(self._entries)

    def get(self, key):
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        if entry[2] is not None and entry[2] in self._entries:
            self._entries.move_to_end(entry[2])
        return entry[0]

    def put(self, key, value, nbytes: int, depends=None) -> None:
        self.pop(key)
        self._entries[key] = (value, max(0, int(nbytes)), depends)
        self.bytes += max(0, int(nbytes))
        keep = {key, depends}
        for old in list(self._entries):
            if self.bytes <= self.max_bytes:
                break
            if old not in keep and old in self._entries:
                count = len(self._entries)
                self.pop(old)  # and what depends on it
                self.evicted += count - len(self._entries)

    def pop(self, key) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self.bytes -= entry[1]
        for other in [k for k, e in self._entries.items() if e[2] == key]:
            self.pop(other)


def _storage_bytes(*objects) -> int:
    """The bytes of the distinct tensor storages in `objects` (their attributes, one level of
    dicts and lists): an estimate of what a shell keeps."""
    seen, total = set(), 0

    def add(t):
        nonlocal total
        if isinstance(t, torch.Tensor):
            storage = t.untyped_storage()
            if storage.data_ptr() not in seen:
                seen.add(storage.data_ptr())
                total += storage.nbytes()

    for obj in objects:
        values = vars(obj).values() if hasattr(obj, "__dict__") else [obj]
        for value in values:
            if isinstance(value, dict):
                value = list(value.values())
            for item in value if isinstance(value, (list, tuple)) else [value]:
                add(item)
    return total


def _shell(spec: dict, data: tuple) -> object:
    """A `Trainer` around cached windows, with throwaway weights (each chunk loads its own)."""
    from minillm.model import MiniTransformer
    from minillm.train import Trainer

    train, valid = data
    trainer = Trainer(
        MiniTransformer(spec["config"]), train, lr=spec["lr"], epochs=spec["epochs"],
        threads=1, hand_gradients=spec["hand_gradients"], batch_size=spec["batch_size"],
        eval_every=spec["eval_every"],
    )
    trainer.valid = valid
    return trainer


def _shell_bytes(trainer) -> int:
    fast = trainer.fast
    parts = [trainer.model, trainer, *([fast, getattr(fast, "grads", None)] if fast else [])]
    params = sum(p.nbytes for p in trainer.model.parameters())
    return _storage_bytes(*[p for p in parts if p is not None],
                          dict(trainer.model.named_parameters())) + 3 * params  # + AdamW, grads


def _load(trainer, state: dict) -> None:
    """Put a chunk's state into a shell: everything training reads or changes, in place."""
    with torch.no_grad():
        trainer.model.load_state_dict(state["weights"])  # the fast path's views see them
        for mine, theirs in zip(trainer._best, state["best"]):
            mine.copy_(theirs)
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.history = list(state["history"])
    trainer.valid_history = list(state["valid_history"])
    trainer.snapshot_every = state["snapshot_every"]
    trainer.snapshots = {epoch: None for epoch in state["snapshot_epochs"]}  # they stay home
    trainer._best_loss = state["best_loss"]
    trainer._batches.set_state(state["batches"])
    trainer.stopped_reason = state["stopped_reason"]
    trainer.seconds = 0.0
    trainer.model.train()


def _empty(trainer) -> None:
    """What a shell holds of a run after its chunk, let go (the next chunk brings its own)."""
    trainer.history, trainer.valid_history, trainer.snapshots = [], [], {}
    trainer.optimizer.state.clear()


def _result(trainer, before: int) -> dict:
    return {
        "weights": trainer.model.state_dict(),  # copied as it is pickled
        "optimizer": trainer.optimizer.state_dict(),
        "new_history": trainer.history[before:],
        "valid_history": trainer.valid_history,
        "snapshot_every": trainer.snapshot_every,
        "snapshots": dict(trainer.snapshots),  # None: an old one the server has
        "best": trainer._best,
        "best_loss": trainer._best_loss,
        "batches": trainer._batches.get_state(),
        "stopped_reason": trainer.stopped_reason,
        "seconds": trainer.seconds,
    }


def _cached_data(cache: Cache, key: str, payload: dict | None):
    data = cache.get(("data", key))
    if data is None and payload is not None:
        def tensors(part):
            return None if part is None else _Tensors(part["X"], part["Y"], part["every"])

        data = (tensors(payload["data"]), tensors(payload["valid"]))
        cache.put(("data", key), data, sum(d.nbytes() for d in data if d is not None))
    return data


def train_in_worker(cache: Cache, request: dict) -> dict:
    """One chunk: the shell for this run (cached, or built around its cached windows), the
    run's state loaded into it, epoch by epoch until a budget is spent; {"miss": True} when
    the windows are needed and did not come."""
    started = time.monotonic()
    key = request["data_key"]
    shell_key = ("shell", key, pickle.dumps(request["spec"]))
    trainer, built = cache.get(shell_key), False
    if trainer is None:
        data = _cached_data(cache, key, request.get("data"))
        if data is None:
            return {"miss": True}
        trainer, built = _shell(request["spec"], data), True
        cache.put(shell_key, trainer, _shell_bytes(trainer), depends=("data", key))
    _load(trainer, request["state"])
    before = trainer.epoch
    deadline = time.thread_time() + request["cpu_seconds"]
    wall_deadline = time.monotonic() + request["wall_seconds"]
    trained = 0
    while (not trainer.done and trained < request["max_epochs"]
           and time.thread_time() < deadline and time.monotonic() < wall_deadline):
        trainer.run(1)
        trained += 1
    result = _result(trainer, before)
    _empty(trainer)
    result["worker"] = (os.getpid(), started, time.monotonic())  # who trained it, and when
    result["built"] = built
    result["cache"] = {"bytes": cache.bytes, "entries": len(cache), "evicted": cache.evicted}
    return result


def _start_worker() -> None:
    # SIGUSR1 prints every thread's stack to stderr (the server's log): the watchdog sends it
    # before it kills a stuck worker, so the log says where it was stuck
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set (a forkserver's child inherits it)
        pass


def _serve(conn, cache_bytes: int) -> None:
    """A worker's life: requests in, replies out, until the server closes its end."""
    _start_worker()
    cache = Cache(cache_bytes)
    while True:
        try:
            request = loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        op = request.get("op")
        try:
            if op == "chunk":
                reply = train_in_worker(cache, request)
            elif op == "ping":
                time.sleep(request.get("wait", 0.0))
                reply = {"pid": os.getpid()}
            elif op == "cache":
                reply = {"keys": [k[:2] for k in cache.keys()], "bytes": cache.bytes,
                         "max_bytes": cache.max_bytes, "evicted": cache.evicted}
            else:
                reply = {"error": f"unknown request {op!r}"}
        except Exception as error:  # the server says what failed; this worker goes on
            reply = {"error": f"{type(error).__name__}: {error}",
                     "traceback": traceback.format_exc()}
        try:
            conn.send_bytes(dumps(reply))
        except (EOFError, OSError):
            return


# ---------------------------------------------------------------------------------------------
# In the server: the pool
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _no_main_module():
    """While workers start: no ``__main__`` for them to run.

    A new process started by ``spawn`` or ``forkserver`` first runs the parent's
    ``__main__`` module again (multiprocessing's "preparation"). In a Streamlit server that
    is the page script being run (Streamlit sets ``sys.modules["__main__"]`` to it), so every
    worker would run a page in bare mode, and a page that needs a session crashes the worker.
    A main module without a file or spec is one multiprocessing leaves alone.
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


ANSWER_SECONDS = 20.0  # a worker that says nothing for this long (beyond a chunk's own
# wall-clock bound) is taken for dead: a lost answer must not hold a training slot for long.
# Generous: a busy machine delays an answer, and one epoch may outlast the chunk's bound.


WATCH_SECONDS = 0.5  # how often the watchdog looks


class WorkerDied(Exception):
    pass


class WorkerError(RuntimeError):
    """A chunk failed inside a worker (the worker's own message and traceback)."""


class _Worker:
    """The server's end of one worker process, and what it was sent lately."""

    def __init__(self, context, cache_bytes: int, number: int):
        self.number = number
        self.conn, child = context.Pipe(duplex=True)
        self.process = context.Process(target=_serve, args=(child, cache_bytes), daemon=True,
                                       name=f"minillm-worker-{number}")
        self.process.start()
        child.close()
        # the windows sent to it, as it would keep them (it may have let some go: it says so)
        self.sent = Cache(cache_bytes)
        self.deadline: float | None = None  # while it has a request: when it must have answered

    def call(self, request: dict, timeout: float = ANSWER_SECONDS) -> dict:
        # Past the deadline the pool's watchdog kills it: then a send it does not read and an
        # answer it never gives both end at once (the pipe breaks), and the caller replaces it.
        self.deadline = time.monotonic() + timeout
        try:
            self.conn.send_bytes(dumps(request))
            reply = loads(self.conn.recv_bytes())
        except (EOFError, OSError) as error:
            raise WorkerDied(str(error)) from error
        finally:
            self.deadline = None
        if "error" in reply:
            raise WorkerError(f"{reply['error']}\n(in the worker)\n{reply.get('traceback', '')}")
        return reply

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.close()
        self.process.join(timeout=2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=2)


class ChunkPool:
    """A small pool of worker processes that train chunks (thread-safe; started lazily).

    A thread that trains a chunk takes one free worker for it (waiting for one if all are
    busy): the one that trained this run last if it is free, else one that has its windows.
    """

    def __init__(self, workers: int, cache_bytes: int | None = None):
        self.workers = max(1, workers)
        self.cache_bytes = cache_bytes_from_env() if cache_bytes is None else int(cache_bytes)
        self._lock = threading.Lock()
        self._free_changed = threading.Condition(self._lock)
        self._all: list[_Worker] = []
        self._free: list[_Worker] = []
        self._numbers = 0
        self._home: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # trainer -> worker
        self._stopping = threading.Event()
        self.counts = {"chunks": 0, "data_sent": 0, "misses": 0, "shells_built": 0,
                       "workers_replaced": 0}

    def _start(self) -> None:
        """Every worker at once, under the lock (see `_no_main_module`)."""
        if self._all:
            return
        context = _context()
        with _no_main_module():
            for _ in range(self.workers):
                self._numbers += 1
                self._all.append(_Worker(context, self.cache_bytes, self._numbers))
        self._free = list(self._all)
        self._free_changed.notify_all()
        self._stopping = threading.Event()
        threading.Thread(target=_watch, args=(weakref.ref(self), self._stopping), daemon=True,
                         name="minillm-worker-watchdog").start()

    def _take(self, trainer, key: str) -> _Worker:
        with self._lock:
            self._start()
            while not self._free:
                self._free_changed.wait()
                self._start()  # after a shutdown meanwhile
            home = self._home.get(trainer) if trainer is not None else None
            worker = (next((w for w in self._free if w is home), None)
                      or next((w for w in self._free if ("data", key) in w.sent), None)
                      or self._free[0])
            self._free.remove(worker)
            return worker

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if worker in self._all:
                self._free.append(worker)
                self._free_changed.notify()
                return
        worker.stop()  # the pool was shut down while it trained

    def _replace(self, dead: _Worker) -> _Worker:
        """A worker that died (killed, out of memory): a new one in its place (not yet free)."""
        dead.stop()
        with self._lock:
            self._numbers += 1
            with _no_main_module():
                worker = _Worker(_context(), self.cache_bytes, self._numbers)
            if dead in self._all:
                self._all[self._all.index(dead)] = worker
            self.counts["workers_replaced"] += 1
        return worker

    def warm_up(self) -> list[int]:
        """Start every worker now (each imports torch once); their process ids."""
        return sorted({reply["pid"] for reply in self._ask_each({"op": "ping"})})

    def _ask_each(self, request: dict) -> list[dict]:
        """`request` to every worker, each once it is free, in the order they were started."""
        with self._lock:
            self._start()
            count = len(self._all)
        taken, replies = [], []
        try:
            for _ in range(count):
                taken.append(self._take(None, ""))
            taken.sort(key=lambda w: w.number)
            for i, worker in enumerate(taken):
                try:
                    replies.append(worker.call(request))
                except WorkerDied:  # died while it was free: a new one answers
                    taken[i] = self._replace(worker)
                    replies.append(taken[i].call(request))
            return replies
        finally:
            for worker in taken:
                self._give_back(worker)

    def cache_of(self) -> list[dict]:
        """What each worker keeps now (for tests and benches): keys, bytes, evictions."""
        return self._ask_each({"op": "cache"})

    def train_chunk(self, trainer, cpu_seconds: float, max_epochs: int,
                    wall_seconds: float, report: dict | None = None) -> int:
        """Train one chunk of `trainer`'s run in a worker; the epochs trained. A worker that
        died (killed, out of memory) is replaced and the chunk runs once more. `report`, if
        given, gets the worker's process id and times, whether the windows were sent and
        whether the worker built a shell."""
        if trainer.done or max_epochs <= 0:
            return 0
        key, size = data_key(trainer)
        request = {"op": "chunk", "data_key": key, "spec": shell_spec(trainer),
                   "state": export_state(trainer), "cpu_seconds": cpu_seconds,
                   "max_epochs": max_epochs, "wall_seconds": wall_seconds}
        worker = self._take(trainer, key)
        sent = False
        try:
            deaths = 0
            while True:
                with_data = ("data", key) not in worker.sent
                request["data"] = data_payload(trainer) if with_data else None
                try:
                    result = worker.call(request, ANSWER_SECONDS + wall_seconds)
                except WorkerDied:
                    deaths += 1
                    worker = self._replace(worker)
                    if deaths == 2:
                        raise BrokenProcessPool("a worker died twice on this chunk") from None
                    continue
                sent = sent or with_data
                if result.get("miss"):
                    worker.sent.pop(("data", key))
                    self.counts["misses"] += 1
                    continue
                worker.sent.get(("data", key)) if not with_data else worker.sent.put(
                    ("data", key), None, size)
                break
        finally:
            self._give_back(worker)
        with self._lock:
            self._home[trainer] = worker
            self.counts["chunks"] += 1
            self.counts["data_sent"] += sent
            self.counts["shells_built"] += result["built"]
        if report is not None:
            pid, started, ended = result["worker"]
            report.update(pid=pid, started=started, ended=ended, data_sent=sent,
                          built=result["built"], cache=result["cache"])
        return apply_state(trainer, result)

    def shutdown(self) -> None:
        with self._lock:
            workers, self._all, self._free = self._all, [], []
            self._stopping.set()
        for worker in workers:
            worker.stop()


def _watch(pool_ref, stopping: threading.Event) -> None:
    """Kills a worker that is past its deadline (see `_Worker.call`), until the pool stops."""
    while not stopping.wait(WATCH_SECONDS):
        pool = pool_ref()
        if pool is None:
            return
        now = time.monotonic()
        for worker in list(pool._all):
            deadline = worker.deadline
            if deadline is not None and now > deadline:
                log.warning("worker %s (pid %s) gave no answer in time: killed, replaced",
                            worker.number, worker.process.pid)
                with contextlib.suppress(OSError, TypeError):
                    os.kill(worker.process.pid, signal.SIGUSR1)
                    time.sleep(0.2)
                    worker.process.kill()
        del pool


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
