"""The network thread -> writer hand-off (ingest/inbox.py)."""

from __future__ import annotations

import threading
import time

from ingest.inbox import WAKE_AT, Inbox


def test_take_stops_at_the_weight_limit_and_keeps_the_rest():
    inbox: Inbox[int] = Inbox(maxsize=1000)
    inbox.put_many([10, 20, 30, 40])
    assert inbox.take(limit=25, timeout=1, weight=lambda x: x) == [10, 20]
    assert len(inbox) == 2
    assert inbox.take(limit=1000, timeout=0.05, weight=lambda x: x) == [30, 40]


def test_take_returns_what_there_is_when_the_time_is_up():
    inbox: Inbox[str] = Inbox(maxsize=1000)
    inbox.put_many(["a"])
    start = time.monotonic()
    assert inbox.take(limit=100, timeout=0.2, weight=lambda _: 1) == ["a"]
    assert 0.15 <= time.monotonic() - start < 2
    assert inbox.take(limit=100, timeout=0.05, weight=lambda _: 1) == []


def test_a_waiting_taker_wakes_once_enough_arrive_not_at_its_deadline():
    inbox: Inbox[int] = Inbox(maxsize=10_000)
    got: list[int] = []
    taker = threading.Thread(
        target=lambda: got.extend(inbox.take(limit=WAKE_AT, timeout=30, weight=lambda _: 1))
    )
    taker.start()
    time.sleep(0.1)  # the taker is waiting
    inbox.put_many(range(WAKE_AT))
    taker.join(5)
    assert not taker.is_alive() and got == list(range(WAKE_AT))


def test_a_full_inbox_holds_the_producer_until_the_writer_takes():
    inbox: Inbox[int] = Inbox(maxsize=3)
    inbox.put_many([1, 2, 3])
    done = threading.Event()

    def produce():
        inbox.put_many([4])
        done.set()

    threading.Thread(target=produce, daemon=True).start()
    assert not done.wait(0.2)  # held: the inbox is full
    assert inbox.take(limit=2, timeout=1, weight=lambda _: 1) == [1, 2]
    assert done.wait(5)
    assert inbox.take(limit=10, timeout=0.05, weight=lambda _: 1) == [3, 4]
