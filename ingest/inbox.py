"""The hand-over from paho's network thread to the writer thread.

`queue.Queue` costs about 1 µs per message in and out (a lock and a condition each way);
here the network thread adds every message of one socket read at once and the writer takes
a whole batch under one lock. A waiting writer is woken once `WAKE_AT` messages wait (or
at its own deadline), not by every read: waking a thread is the costly part. Bounded: when
it holds `maxsize` messages the network thread waits (QoS 1 messages are already bounded
by Receive Maximum; this catches QoS 0 floods).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")
WAKE_AT = 64


class Inbox(Generic[T]):
    def __init__(self, maxsize: int):
        self._items: deque[T] = deque()
        self._maxsize = maxsize
        self._cond = threading.Condition(threading.Lock())
        self._taker_waiting = False
        self._putter_waiting = False

    def __len__(self) -> int:
        return len(self._items)

    def put_many(self, items: Iterable[T]) -> None:
        with self._cond:
            while len(self._items) >= self._maxsize:
                self._putter_waiting = True
                self._cond.wait()
            self._items.extend(items)
            if self._taker_waiting and len(self._items) >= WAKE_AT:
                self._taker_waiting = False
                self._cond.notify_all()

    def take(self, limit: int, timeout: float, weight: Callable[[T], int]) -> list[T]:
        """Items until their `weight`s reach `limit` or `timeout` seconds pass (whatever
        is there then, possibly nothing)."""
        batch: list[T] = []
        size = 0
        deadline = time.monotonic() + timeout
        items = self._items
        with self._cond:
            while size < limit:
                if not items:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._taker_waiting = True
                    self._cond.wait(remaining)
                    self._taker_waiting = False
                    continue
                item = items.popleft()
                batch.append(item)
                size += weight(item)
            if batch and self._putter_waiting:
                self._putter_waiting = False
                self._cond.notify_all()  # room again for a network thread waiting on a full inbox
        return batch
