"""History in minutes: run the simulation over past days and write readings with binary COPY
straight into `<kind>_readings`, around ingest (ingest refuses readings older than 72 h).

Rows look as ingest would write them, with `received_at = ts` and no `extra`. Any readings of
the fleet's devices already in the window are deleted first, so a backfill can be repeated.
The hourly rollups are refreshed over the window at the end.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from tqdm import tqdm

from simulators.engine import Simulation
from simulators.fleet import Fleet
from simulators.world import World
from urbanwatch import db
from urbanwatch.kinds import KINDS, measurement_fields
from urbanwatch.queries.readings import copy_readings
from urbanwatch.queries.rollups import refresh_rollups, settle_after_bulk_load

logger = logging.getLogger(__name__)

CHUNK_ROWS = 20_000  # rows per COPY: large enough to amortise a statement, small for memory
SLICE_MS = 3_600_000  # the progress bar moves one simulated hour at a time


def _copy(conn: psycopg.Connection, kind: str, rows: list[tuple[Any, ...]]) -> None:
    with conn.cursor() as cur:
        copy_readings(cur, kind, rows)


def clear_window(
    conn: psycopg.Connection, device_ids: list[str], start: datetime, end: datetime
) -> int:
    removed = 0
    for kind in KINDS:
        cur = conn.execute(
            sql.SQL("DELETE FROM {} WHERE device_id = ANY(%s) AND ts >= %s AND ts < %s").format(
                sql.Identifier(f"{kind}_readings")
            ),
            (device_ids, start, end),
        )
        removed += cur.rowcount
    return removed


def backfill(
    conn: psycopg.Connection,
    sim: Simulation,
    start_ms: int,
    end_ms: int,
    *,
    progress: bool = True,
    rollups: bool = True,
    clear: bool = True,
    on_hour: Callable[[], None] | None = None,
) -> dict[str, int]:
    """Write every reading in [start, end) and return counts per kind. `conn` must be in
    autocommit mode (each COPY commits; the rollup refresh needs it)."""
    start, end = (datetime.fromtimestamp(t / 1000, UTC) for t in (start_ms, end_ms))
    if clear:
        removed = clear_window(conn, [d.device_id for d in sim.devices], start, end)
        if removed:
            logger.info("deleted %d earlier readings of these devices in the window", removed)
    fields = {kind: measurement_fields(kind) for kind in KINDS}
    buffers: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    counts: dict[str, int] = defaultdict(int)
    hours = -(-(end_ms - start_ms) // SLICE_MS)
    with tqdm(total=hours, unit="h", desc="backfill", disable=not progress) as bar:
        t = start_ms
        while t < end_ms:
            t = min(t + SLICE_MS, end_ms)
            for device, payload in sim.advance(t - 1):
                ts = datetime.fromtimestamp(payload["ts"] / 1000, UTC)
                kind = device.kind
                buffer = buffers[kind]
                buffer.append(
                    (ts, device.device_id, ts, *[payload.get(f) for f in fields[kind]], None)
                )
                if len(buffer) >= CHUNK_ROWS:
                    _copy(conn, kind, buffer)
                    counts[kind] += len(buffer)
                    buffer.clear()
            bar.update(1)
            if on_hour is not None:
                on_hour()
            bar.set_postfix(readings=sum(counts.values()) + sum(map(len, buffers.values())))
    for kind, buffer in buffers.items():
        if buffer:
            _copy(conn, kind, buffer)
            counts[kind] += len(buffer)
    if rollups:
        _finish(conn, start, end)
    return dict(counts)


def _finish(conn: psycopg.Connection, start: datetime, end: datetime) -> None:
    """After the last COPY: statistics and BRIN summaries, then the rollups of the window."""
    settle_after_bulk_load(conn)
    logger.info("rollups: %s", refresh_rollups(conn, start, end))


def backfill_parallel(
    url: str,
    fleet: Fleet,
    world: World,
    start_ms: int,
    end_ms: int,
    *,
    jobs: int,
    progress: bool = True,
) -> dict[str, int]:
    """The same rows as `backfill`, written by `jobs` forked processes. Each takes whole random
    streams (device shards), so every device draws exactly what it draws in one process."""
    start, end = (datetime.fromtimestamp(t / 1000, UTC) for t in (start_ms, end_ms))
    with db.connect(url, autocommit=True) as conn:
        clear_window(conn, [d.device_id for d in fleet.devices], start, end)
    ctx = multiprocessing.get_context("fork")
    hours_done = ctx.Value("q", 0)
    results = ctx.Queue()
    args = (url, fleet, world, start_ms, end_ms, jobs, hours_done, results)
    procs = [ctx.Process(target=_job, args=(j, *args), daemon=True) for j in range(jobs)]
    for proc in procs:
        proc.start()
    total_hours = -(-(end_ms - start_ms) // SLICE_MS) * jobs
    with tqdm(total=total_hours, unit="h", desc=f"backfill ×{jobs}", disable=not progress) as bar:
        while any(p.is_alive() for p in procs):
            bar.update(hours_done.value - bar.n)
            time.sleep(0.2)
        bar.update(hours_done.value - bar.n)
    failed = [p.exitcode for p in procs if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"{len(failed)} backfill job(s) failed (exit codes {failed})")
    counts: dict[str, int] = defaultdict(int)
    for _ in procs:
        for kind, n in results.get(timeout=10).items():
            counts[kind] += n
    with db.connect(url, autocommit=True) as conn:
        _finish(conn, start, end)
    return dict(counts)


def _job(
    job: int,
    url: str,
    fleet: Fleet,
    world: World,
    start_ms: int,
    end_ms: int,
    jobs: int,
    hours_done: Any,
    results: Any,
) -> None:
    devices = [d for d in fleet.devices if d.shard % jobs == job]
    sim = Simulation(fleet, world, start_ms, devices=devices)

    def tick() -> None:
        with hours_done.get_lock():
            hours_done.value += 1

    with db.connect(url, autocommit=True) as conn:
        counts = backfill(
            conn, sim, start_ms, end_ms, progress=False, rollups=False, clear=False, on_hour=tick
        )
    results.put(counts)
