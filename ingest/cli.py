"""`urbanwatch ingest`: run the MQTT -> database worker until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import threading
from typing import Any

from ingest.session import ClaimRefused
from ingest.worker import Worker
from urbanwatch.errors import RuntimeProblem
from urbanwatch.settings import Settings

logger = logging.getLogger("ingest")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "ingest",
        help="run the MQTT -> database ingest worker",
        description="Subscribe (MQTT 5, QoS 1, persistent session) to everything under the "
        "topic prefix, validate each reading and write batches with COPY. A message is "
        "acknowledged only after its rows are committed or it is dead-lettered. One worker "
        "takes every message; to split the load set INGEST_SHARE_GROUP and start several "
        "(docs/scaling.md). Tunables: INGEST_* environment variables (README.md).",
    )
    p.add_argument(
        "--client-id",
        help="MQTT client id (default: INGEST_CLIENT_ID, else claimed automatically as "
        "urbanwatch-ingest-<deployment>-<slot>, the same after a restart so the session and "
        "the messages queued meanwhile come back); two running workers never share one",
    )
    p.set_defaults(func=run)


def _tune_gc() -> None:
    """Fewer cyclic-GC passes: every reading allocates a few containers, and with the
    defaults a young-generation pass ran every ~120 readings and a full one, walking every
    object the libraries loaded, every ~12k. Objects alive after start-up are frozen out of
    the collector's sight; the young generation is collected every 50k allocations (the
    worker's garbage is acyclic, freed by reference counting)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def run(args: argparse.Namespace, settings: Settings) -> int:
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    worker = Worker(settings, client_id=args.client_id)
    _tune_gc()
    try:
        worker.start()  # database errors end the command with one line (urbanwatch/errors.py)
    except ClaimRefused as exc:
        raise RuntimeProblem(f"cannot start ingest: {exc}") from None
    logger.info("ingest running; Ctrl-C to stop")
    while not done.wait(1.0) and not worker.failed.is_set():
        pass
    logger.info("stopping: committing and acknowledging what is buffered")
    worker.stop()
    return 1 if worker.failed.is_set() else 0
