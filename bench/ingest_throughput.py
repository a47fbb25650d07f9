"""Part 2 (and the engine of part 3): the real worker, end to end.

The load generator publishes at a paced offered rate; `urbanwatch ingest` subprocesses on
the shared subscription validate, COPY, commit and only then acknowledge. Commits are seen
through the bench commit log (bench/harness.py). Throughput is committed readings divided
by the time from the first publish to the last commit, so a worker that falls behind pays
for its backlog; every published reading must be in the table at the end (count checked).
"""

from __future__ import annotations

import sys
import time
import uuid

import orjson
import psycopg
from psycopg import sql

from bench import load
from bench.harness import (
    CommitListener,
    LoadGenerator,
    Worker,
    bench_database,
    broker,
    count_rows,
    cpu_seconds,
    register_devices,
    wait_for,
)

DEVICES = 1000  # per-device case: distinct device topics
GATEWAYS = 4


def _backend_pids(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'urbanwatch-ingest'"
        ).fetchall()
    return [r[0] for r in rows]


SERVER_COUNTERS = """SELECT checkpoints_timed + checkpoints_req, buffers_backend,
       pg_current_wal_lsn() - '0/0'::pg_lsn FROM pg_stat_bgwriter"""


def _server_counters(url: str) -> tuple[int, int, int]:
    """Checkpoints, pages written by backends themselves (evicting), WAL position: how the
    database server's own configuration weighs on a run (bench/README.md)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(SERVER_COUNTERS).fetchone()
    return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)


def _pg_settings(url: str) -> str:
    names = ("shared_buffers", "max_wal_size", "synchronous_commit", "wal_compression")
    with psycopg.connect(url) as conn:
        return ", ".join(
            f"{n} {conn.execute(sql.SQL('SHOW {}').format(sql.Identifier(n))).fetchone()[0]}"  # type: ignore[index]
            for n in names
        )


def run_ingest(
    admin_url: str,
    mode: str,
    workers: int,
    rate: float,
    seconds: float,
    latency: bool = False,
    env: dict[str, str] | None = None,
) -> dict:
    prefix = f"uwb{uuid.uuid4().hex[:6]}"
    log = "timestamps" if latency else "rows"
    with bench_database(admin_url, commit_log=log) as url, broker() as b:
        if mode == "device":
            devices = load.device_ids(prefix, DEVICES)
        else:
            devices = [
                f"{prefix}-gw{g}-sl{d:04d}"
                for g in range(GATEWAYS)
                for d in range(load.DEVICES_PER_GATEWAY)
            ]
        # each gateway reports for its own devices (gw<g>, bench/publisher.py)
        gateways = {d: d.split("-")[-2] for d in devices if mode == "gateway"}
        register_devices(url, "streetlight", devices, gateways)
        listener = CommitListener(url)
        # Several workers split the stream through a shared subscription (docs/scaling.md).
        shared = {"INGEST_SHARE_GROUP": "ingest"} if workers > 1 else {}
        procs = [
            Worker(url, b.url, prefix, f"{prefix}-w{i}", **shared, **(env or {}))
            for i in range(workers)
        ]
        backends = _backend_pids(url)
        backend_cpu0 = sum(cpu_seconds(p) for p in backends)
        server0 = _server_counters(url)
        broker_cpu0 = cpu_seconds(b.proc.pid)
        # ts = scheduled publish time: the generator is told to start 0.3 s after "go"
        spec = {"mode": mode, "prefix": prefix, "rate": rate, "seconds": seconds}
        spec |= {"devices": DEVICES, "gateways": GATEWAYS}
        t0 = time.time() + 3 + rate * seconds * 4e-6
        gen = LoadGenerator(b.port, **spec, t0=t0)
        time.sleep(max(0.0, t0 - time.time()))
        gen.go()
        paced = gen.result()
        expected = int(paced["readings"])

        def progress() -> tuple[int, float]:
            return listener.rows(), time.monotonic()

        last = progress()

        def done_or_stalled() -> bool:
            nonlocal last
            now = progress()
            if now[0] >= expected:
                return True
            if now[0] > last[0]:
                last = now
            return now[1] - last[1] > 20

        wait_for(done_or_stalled, seconds * 10 + 60, "the workers to commit everything", 0.2)
        last_commit = listener.commits[-1][0] if listener.commits else time.time()
        backend_cpu = sum(cpu_seconds(p) for p in backends) - backend_cpu0
        broker_cpu = cpu_seconds(b.proc.pid) - broker_cpu0
        server = [
            after - before for after, before in zip(_server_counters(url), server0, strict=True)
        ]
        stopped = [w.stop() for w in procs]
        listener.close()
        stored = count_rows(url, "streetlight")
        batch = load.GATEWAY_BATCH
        result = {
            "mode": mode,
            "workers": workers,
            "offered_readings_per_s": round(paced["offered_readings_per_s"]),
            "publish_seconds": round(paced["seconds"], 1),
            "published_readings": expected,
            "acked_by_broker": int(paced["acked"]) * (1 if mode == "device" else batch),
            "stored_readings": stored,
            "lost": expected - stored,
            "readings_per_s": round(stored / (last_commit - paced["started"])),
            "drain_after_publish_s": round(last_commit - paced["started"] - paced["seconds"], 1),
            "worker_cpu_s_per_million": round(sum(c for c, _ in stopped) / stored * 1e6, 1),
            "pg_backend_cpu_s_per_million": round(backend_cpu / stored * 1e6, 1),
            "broker_cpu_s_per_million": round(broker_cpu / stored * 1e6, 1),
            "loadgen_cpu_s_per_million": round(paced["cpu_s"] / stored * 1e6, 1),
            "commits": len(listener.commits),
            "pg_checkpoints": server[0],
            "pg_backend_evictions_mb": round(server[1] * 8192 / 1e6),
            "pg_wal_bytes_per_reading": round(server[2] / stored) if stored else None,
        }
        if latency:
            result |= _latencies(url, listener)
    return result


def _latencies(url: str, listener: CommitListener) -> dict:
    """Commit time (notification receipt) minus the reading's ts (its scheduled publish time)."""
    committed_at = {batch: t for t, batch, _ in listener.commits}
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT id, extract(epoch FROM t)::float8 FROM bench_batches, unnest(ts) t"
        ).fetchall()
    lat = sorted(committed_at[i] - ts for i, ts in rows if i in committed_at)

    def q(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 1)

    return {"latency_ms": {"p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "max": q(1.0)}}


def run(admin_url: str, quick: bool) -> dict:
    seconds = 5 if quick else 30
    cases = {
        # offered a little above the target rate, so "committed/s" answers whether it holds;
        # when the broker cannot take more, the generator's window slows it down and the
        # "offered" column shows what the broker accepted
        "device_1_worker": ("device", 1, 30_000),
        "device_2_workers": ("device", 2, 42_000),
        "gateway_1_worker": ("gateway", 1, 105_000),
    }
    result: dict = {"pg_settings": _pg_settings(admin_url)}
    for name, (mode, workers, rate) in cases.items():
        result[name] = run_ingest(admin_url, mode, workers, rate, seconds)
        print(name, orjson.dumps(result[name]).decode(), file=sys.stderr)
    return result
