"""Part 3: publish -> commit latency at a steady, sustainable rate (10k readings/s).

Each reading's `ts` is its scheduled publish time; its commit time is when the bench
commit log's NOTIFY for its COPY statement arrived (PostgreSQL delivers it only after the
commit). The difference includes the pacer, broker, the worker's batching window
(INGEST_FLUSH_INTERVAL_S, 0.2 s by default), COPY and commit. Acks follow the commit.
"""

from __future__ import annotations

import sys

import orjson

from bench.ingest_throughput import run_ingest

RATE = 10_000


def run(admin_url: str, quick: bool) -> dict:
    result = run_ingest(admin_url, "device", 1, RATE, 5 if quick else 20, latency=True)
    print("latency", orjson.dumps(result).decode(), file=sys.stderr)
    return result
