"""Part 1, the machine's ceiling, measured first in the same run as everything else:

* the broker's loopback rate for per-reading QoS 1 messages from the load generator to a
  count-only subscriber: Mosquitto's own `mosquitto_sub` (C) and a paho subscriber (the
  Python client the worker is built on), each alone;
* binary COPY rows/s into `streetlight_readings` (its unique index, BRIN and trigger):
  a pre-encoded stream (the server's ceiling) and psycopg `write_row` from Python tuples in
  batches of 5000 (what the worker's writer pays per row on top).
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import orjson
import psycopg

from bench.harness import BIN, ROOT, LoadGenerator, bench_database, broker

COPY_COLUMNS = (
    "ts, device_id, received_at, power_state, active_power_w, supply_voltage_v, "
    "supply_current_a, power_factor, active_energy_kwh, rsrp_dbm"
)
COPY_TYPES = ["timestamptz", "text", "timestamptz", "text", *["float8"] * 6]
GENERATE = """COPY (SELECT now() - (i % 100000) * INTERVAL '1 second', 'dev' || (i / 100000),
    now(), 'on', (80 + i % 10)::float8, 230::float8, 0.35::float8, 0.97::float8,
    (1000 + i)::float8, -95::float8
    FROM generate_series(1, %s) i) TO STDOUT (FORMAT BINARY)"""


def broker_rate(subscriber: str, rate: float, seconds: float, devices: int = 1000) -> dict:
    """Per-device QoS 1 messages, paced at `rate`, to one count-only subscriber."""
    prefix = f"uwc{uuid.uuid4().hex[:6]}"
    with broker() as b:
        spec = {"mode": "device", "prefix": prefix, "devices": devices, "rate": rate}
        gen = LoadGenerator(b.port, **spec, seconds=seconds, t0=time.time())
        total = int(rate / devices * seconds) * devices
        topic = f"{prefix}/#"
        if subscriber == "mosquitto_sub":
            cmd = ["mosquitto_sub", "-p", str(b.port), "-V", "mqttv5", "-q", "1", "-t", topic]
            cmd += ["-D", "connect", "receive-maximum", "65535"]
            cmd += ["-C", str(total), "-W", str(int(seconds * 4 + 30))]
            sub = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(0.5)
        else:
            cmd = [str(BIN / "python"), "-m", "bench.count_subscriber", "127.0.0.1"]
            cmd += [str(b.port), topic, str(total), "5"]
            sub = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=ROOT)
            line = sub.stdout.readline()  # type: ignore[union-attr]
            assert line.startswith(b"subscribed"), line
        gen.go()
        paced = gen.result()
        sub.wait(timeout=seconds * 4 + 40)
        end = time.time()
        if subscriber == "mosquitto_sub":
            received = total if sub.returncode == 0 else -1  # -C: exits after `total`
        else:
            state = orjson.loads(sub.stdout.read())  # type: ignore[union-attr]
            received, end = state["count"], state["last"]
    return {
        "subscriber": subscriber,
        "offered_msgs_per_s": round(paced["offered_readings_per_s"]),
        "pacer_max_lag_s": round(paced["max_lag_s"], 3),
        "published": total,
        "received": received,
        "msgs_per_s": round(received / (end - paced["started"])) if received > 0 else None,
        "loadgen_cpu_s_per_million": round(paced["cpu_s"] / total * 1e6, 1),
    }


def copy_rate(admin_url: str, rows: int) -> dict:
    with bench_database(admin_url, commit_log=None) as url, psycopg.connect(url) as conn:
        with conn.cursor() as cur, cur.copy(GENERATE.replace("%s", str(rows))) as copy:
            encoded = b"".join(bytes(chunk) for chunk in copy)
        conn.commit()
        into = f"COPY streetlight_readings ({COPY_COLUMNS}) FROM STDIN (FORMAT BINARY)"
        start = time.perf_counter()
        with conn.cursor() as cur, cur.copy(into) as copy:
            copy.write(encoded)
        conn.commit()
        server = rows / (time.perf_counter() - start)
        conn.execute("TRUNCATE streetlight_readings")
        conn.commit()
        now = datetime.now(UTC)
        tuples = [
            (now, f"dev{i % 2000}", now, "on", 80.0, 230.0, 0.35, 0.97, 1000.0 + i, -95.0)
            for i in range(rows)
        ]
        # distinct (device_id, ts): shift ts per round of 2000 devices
        tuples = [
            (t[0].replace(microsecond=i // 2000 % 1_000_000), *t[1:]) for i, t in enumerate(tuples)
        ]
        start = time.perf_counter()
        for lo in range(0, rows, 5000):
            with conn.cursor() as cur, cur.copy(into) as copy:
                copy.set_types(COPY_TYPES)
                for row in tuples[lo : lo + 5000]:
                    copy.write_row(row)
            conn.commit()
        client = rows / (time.perf_counter() - start)
    return {
        "rows": rows,
        "preencoded_rows_per_s": round(server),
        "write_row_batches_of_5000_rows_per_s": round(client),
    }


def run(admin_url: str, quick: bool) -> dict:
    seconds = 3 if quick else 8
    rate = 60_000
    result = {
        "broker_mosquitto_sub": broker_rate("mosquitto_sub", rate, seconds),
        "broker_paho_count": broker_rate("paho", rate, seconds),
        "copy": copy_rate(admin_url, 200_000 if quick else 1_000_000),
    }
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode(), file=sys.stderr)
    return result
