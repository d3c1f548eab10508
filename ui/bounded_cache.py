"""A cache shared by the whole server, bounded in bytes as well as in entries.

`st.cache_resource(max_entries=16)` bounds how many results are kept, not how big they are:
sixteen previews of large corpora can be hundreds of MB. `BoundedCache` keeps the most
recently used results while their estimated size (`size_of`) stays under `max_bytes`; a
result bigger than the whole budget is returned but not kept.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable

import pandas as pd
import torch


def size_of(value: Any) -> int:
    """Estimated bytes held by `value`: tensors, DataFrames, and containers of them."""
    if isinstance(value, torch.Tensor):
        return value.nbytes
    if isinstance(value, pd.DataFrame):
        return int(value.memory_usage(deep=True).sum())
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, int) for v in value[:8]):  # ids: 28 bytes an int + slot
            return sys.getsizeof(value) + 28 * len(value)
        return sys.getsizeof(value) + sum(size_of(v) for v in value)
    if isinstance(value, dict):
        return sys.getsizeof(value) + sum(size_of(v) for v in value.values())
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return sys.getsizeof(value) + sum(size_of(v) for v in vars(value).values())
    return sys.getsizeof(value)


class BoundedCache:
    def __init__(self, max_entries: int, max_bytes: float):
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def bytes(self) -> int:
        return sum(size for _, size in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """The cached result for `key`, or `make()`'s (kept if it fits)."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
        value = make()  # outside the lock: other keys need not wait for this one
        size = size_of(value)
        with self._lock:
            if size <= self.max_bytes:
                self._items[key] = (value, size)
                self._items.move_to_end(key)
                total = self.bytes
                while self._items and (len(self._items) > self.max_entries or total > self.max_bytes):
                    _, (_, dropped) = self._items.popitem(last=False)
                    total -= dropped
        return value
