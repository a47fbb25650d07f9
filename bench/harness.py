"""What every benchmark part shares: a broker on the project configuration, a throw-away
migrated database with a commit log, the real ingest worker as a subprocess with CPU
accounting, and a paced load generator built on Debian's `mosquitto_pub -l`.

Commit times come from PostgreSQL itself: in bench databases a statement trigger on each
`<kind>_readings` table records the statement's rows in `bench_batches` and sends
`NOTIFY bench_commit`. PostgreSQL delivers a notification only when its transaction commits,
so the listener's receive time is the commit time (plus sub-millisecond delivery).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from urbanwatch.kinds import KINDS
from urbanwatch.migrate import migrate

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
CONF_DIR = ROOT / "deploy" / "mosquitto" / "conf.d"
DB_PREFIX = "uw_bench_"
CLK_TCK = os.sysconf("SC_CLK_TCK")

COMMIT_LOG_SQL = """
CREATE TABLE bench_batches (id bigserial PRIMARY KEY, n integer, ts timestamptz[]);
CREATE FUNCTION bench_note_commit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE b bigint; k integer;
BEGIN
    INSERT INTO bench_batches (n, ts) SELECT count(*), array_agg(ts) FROM new_rows
        RETURNING id, n INTO b, k;
    PERFORM pg_notify('bench_commit', b || ':' || k);
    RETURN NULL;
END $$;
-- Throughput runs need only each commit's row count: aggregating every ts as well cost
-- PostgreSQL 0.6 µs a row (a quarter of its COPY cost); counting costs under 0.1 µs.
CREATE FUNCTION bench_note_count() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE k integer;
BEGIN
    SELECT count(*) INTO k FROM new_rows;
    PERFORM pg_notify('bench_commit', '0:' || k || ':' || TG_TABLE_NAME);
    RETURN NULL;
END $$;
"""


def wait_for(condition, timeout: float, what: str, interval: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
    return value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def reap(proc: subprocess.Popen[bytes], timeout: float) -> float:
    """Wait for a child to exit; its total CPU seconds (from wait4's rusage)."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return float(usage.ru_utime + usage.ru_stime)
        if time.monotonic() > deadline:
            proc.kill()
        time.sleep(0.02)


# --- broker --------------------------------------------------------------------------


@dataclass
class Broker:
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path


@contextmanager
def broker() -> Iterator[Broker]:
    """Mosquitto with deploy/mosquitto/conf.d on a free loopback port (as tests/conftest.py)."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="uw-bench-mqtt-"))
    conf = folder / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\npersistence false\ninclude_dir {CONF_DIR}\n")
    log = folder / "mosquitto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([binary, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)

    def accepting() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    try:
        wait_for(accepting, 10, "mosquitto to accept connections")
        yield Broker(f"mqtt://127.0.0.1:{port}", port, proc, log)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


# --- database ------------------------------------------------------------------------


@contextmanager
def bench_database(  # type: ignore[no-untyped-def]
    admin_url: str,
    storage: str = "plain",
    commit_log: str | None = "rows",
    tag: str = "",
    keep: bool = False,
):
    """A fresh migrated database named uw_bench_[tag_]*, dropped afterwards unless `keep`.
    `commit_log`: a notification per committed readings statement with its row count
    ("rows") or also every reading's ts ("timestamps", for latencies; costs PostgreSQL
    more), or none."""
    name = f"{DB_PREFIX}{tag + '_' if tag else ''}{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(admin_url, dbname=name)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn, storage)  # type: ignore[arg-type]
            if commit_log:
                conn.execute(COMMIT_LOG_SQL)
                trigger = (
                    "CREATE TRIGGER bench_commit AFTER INSERT ON {} REFERENCING NEW TABLE AS "
                    "new_rows FOR EACH STATEMENT EXECUTE FUNCTION bench_note_commit()"
                    if commit_log == "timestamps"
                    else "CREATE TRIGGER bench_commit AFTER INSERT ON {} REFERENCING NEW TABLE AS "
                    "new_rows FOR EACH STATEMENT EXECUTE FUNCTION bench_note_count()"
                )
                for kind in KINDS:
                    conn.execute(sql.SQL(trigger).format(sql.Identifier(f"{kind}_readings")))
        yield url
    finally:
        if keep:
            print(f"kept {name}: drop it with DROP DATABASE {name} WITH (FORCE)")
        else:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def register_devices(
    url: str, kind: str, device_ids: list[str], gateways: dict[str, str] | None = None
) -> None:
    """Devices of one kind, spread over the central districts; `gateways` maps a device to
    the gateway it reports through (only that gateway may report for it)."""
    districts = ["wenfeng", "beiguan", "yindu", "longan"]
    gateways = gateways or {}
    query = "COPY devices (device_id, kind, district, lat, lon, gateway_id) FROM STDIN"
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO gateways (gateway_id) VALUES (%s) ON CONFLICT DO NOTHING",
            [(g,) for g in set(gateways.values())],
        )
        with cur.copy(query) as c:
            for i, d in enumerate(device_ids):
                c.write_row((d, kind, districts[i % len(districts)], 36.1, 114.35, gateways.get(d)))


class CommitListener:
    """Records (receive time, batch id, rows) for every committed readings statement."""

    def __init__(self, url: str):
        self.url = url
        self.commits: list[tuple[float, int, int]] = []
        self._stop = threading.Event()
        self._conn = psycopg.connect(url, autocommit=True)
        self._conn.execute("LISTEN bench_commit")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for note in self._conn.notifies(timeout=0.2):
                batch, n = note.payload.split(":")[:2]
                self.commits.append((time.time(), int(batch), int(n)))

    def rows(self) -> int:
        return sum(c[2] for c in self.commits)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._conn.close()


def count_rows(url: str, kind: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(f"{kind}_readings"))
        ).fetchone()
    return int(row[0]) if row else 0


# --- worker --------------------------------------------------------------------------


class Worker:
    """`urbanwatch ingest` as a subprocess; logs to a file, CPU read from /proc."""

    def __init__(self, database_url: str, mqtt_url: str, prefix: str, client_id: str, **env: str):
        self.log = Path(tempfile.mkstemp(prefix=f"uw-bench-{client_id}-", suffix=".log")[1])
        environment = {
            **os.environ,
            "DATABASE_URL": database_url,
            "MQTT_URL": mqtt_url,
            "MQTT_TOPIC_PREFIX": prefix,
            "INGEST_STATS_INTERVAL_S": "5",
            **env,
        }
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "urbanwatch"), "ingest", "--client-id", client_id],
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for(
            lambda: b"subscriptions confirmed: ready" in self.log.read_bytes(),
            20,
            f"{client_id} to subscribe",
        )
        self.cpu_start = cpu_seconds(self.proc.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid) - self.cpu_start

    def stop(self) -> tuple[float, str]:
        """SIGTERM (the worker commits what it holds), then its CPU seconds and its log."""
        self.proc.terminate()
        cpu = reap(self.proc, 30) - self.cpu_start
        text = self.log.read_text(errors="replace")
        self.log.unlink(missing_ok=True)
        return cpu, text


# --- load generator ------------------------------------------------------------------


class LoadGenerator:
    """bench/publisher.py as a subprocess: builds its packets, then paces them on `go()`."""

    def __init__(self, mqtt_port: int, **spec: object):
        spec = {"host": "127.0.0.1", "port": mqtt_port, "client_id": uuid.uuid4().hex, **spec}
        self.proc = subprocess.Popen(
            [str(BIN / "python"), "-m", "bench.publisher", json.dumps(spec)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        ready = self.proc.stdout.readline()  # type: ignore[union-attr]
        if ready.strip() != "ready":
            raise RuntimeError(f"load generator failed to start: {ready!r}")

    def go(self) -> None:
        self.proc.stdin.write("go\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]

    def result(self) -> dict[str, float]:
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        self.proc.wait(timeout=90)
        if not line:
            raise RuntimeError(f"load generator exited {self.proc.returncode} without a result")
        out: dict[str, float] = json.loads(line)
        out["offered_readings_per_s"] = out["readings"] / out["seconds"]
        return out


def machine_info() -> dict[str, object]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "ingest", "deploy", "bench"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "commit": commit + ("+uncommitted" if dirty else ""),
        "mosquitto": subprocess.run(
            ["mosquitto_pub", "--help"], capture_output=True, text=True
        ).stdout.splitlines()[1],
    }
