"""Test-side helpers for ingest: registering devices, counting rows, publishing, and
workers run in-process or as processes (real broker, real database)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from psycopg import sql

from ingest.worker import Worker
from tests.conftest import wait_for
from urbanwatch.settings import Settings, mqtt_host_port


def register(
    conn: psycopg.Connection, devices: list[tuple[str, str]], gateway: str | None = "gw-1"
) -> None:
    """Register (device_id, kind) pairs, each behind `gateway` (only it may report for them)."""
    with conn.cursor() as cur:
        if gateway:
            cur.execute("INSERT INTO gateways VALUES (%s) ON CONFLICT DO NOTHING", (gateway,))
        cur.executemany(
            "INSERT INTO devices (device_id, kind, district, lat, lon, gateway_id) "
            "VALUES (%s, %s, 'wenfeng', 36.1, 114.35, %s)",
            [(d, k, gateway) for d, k in devices],
        )


def count(conn: psycopg.Connection, table: str) -> int:
    return conn.execute(
        sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
    ).fetchone()[0]


def iso(ts: datetime) -> str:
    return ts.isoformat(timespec="milliseconds")


def make_settings(database_url: str, mqtt_url: str, prefix: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "mqtt_url": mqtt_url,
        "mqtt_topic_prefix": prefix,
        "ingest_client_id": f"{prefix}-worker",
        "ingest_flush_interval_s": 0.05,
        "ingest_stats_interval_s": 3600,
        **overrides,
    }
    return Settings(**values)


@contextmanager
def running_worker(settings: Settings, client_id: str | None = None) -> Iterator[Worker]:
    worker = Worker(settings, client_id=client_id)
    worker.start()
    try:
        wait_for(worker.subscribed.is_set, timeout=10, what="the worker's subscriptions")
        yield worker
    finally:
        worker.stop()


class Publisher:
    """A QoS 1 publisher that waits for each PUBACK, so 'published' means 'at the broker'."""

    def __init__(self, mqtt_url: str, **will: Any):
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"pub-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        if will:
            self.client.will_set(**will)
        host, port = mqtt_host_port(mqtt_url)
        self.client.connect(host, port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes | str | dict | list, qos: int = 1) -> None:
        if isinstance(payload, dict | list):
            payload = orjson.dumps(payload)
        info = self.client.publish(topic, payload, qos=qos)
        info.wait_for_publish(timeout=10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WorkerProcess:
    """`urbanwatch ingest` as a real process; its log lines are collected as they come, so a
    test waits for "ready" (the broker confirmed the subscriptions) instead of probing."""

    def __init__(self, database_url: str, mqtt_url: str, prefix: str, *args: str, **env: str):
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "MQTT_URL": mqtt_url,
            "MQTT_TOPIC_PREFIX": prefix,
            "INGEST_FLUSH_INTERVAL_S": "0.05",
            "INGEST_BATCH_SIZE": "200",
            "INGEST_CLAIM_WAIT_S": "15",
            **env,
        }
        self.args = args
        self.lines: list[str] = []
        self.start()

    def start(self) -> None:
        self.lines.clear()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "urbanwatch.cli", "ingest", *self.args],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._reader.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_ready(self, timeout: float = 20) -> None:
        wait_for(
            lambda: "subscriptions confirmed: ready" in self.log() or self.proc.poll() is not None,
            timeout=timeout,
            what="the worker to subscribe",
        )
        assert self.proc.poll() is None, f"the worker exited:\n{self.log()}"

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._reader.join(timeout=5)

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=20)
        self._reader.join(timeout=5)
        return code


class MqttCutter:
    """A TCP proxy between a client and the broker that understands MQTT framing: armed, it
    drops the connection at the first PUBACK the client sends, so the broker never learns
    that what the client committed was acknowledged (a crash or a network cut at that exact
    moment). Everything else passes through unchanged."""

    def __init__(self, broker_url: str):
        self.broker = mqtt_host_port(broker_url)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"mqtt://127.0.0.1:{self.server.getsockname()[1]}"
        self.armed = threading.Event()
        self.cuts = 0
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self.server.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.broker)
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
            threading.Thread(target=self._client_side, args=(client, upstream), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def _client_side(self, client: socket.socket, upstream: socket.socket) -> None:
        """Forward the client's packets one by one, cutting at a PUBACK when armed."""
        buf = b""
        try:
            while data := client.recv(65536):
                buf += data
                while (packet := _take_packet(buf)) is not None:
                    size = len(packet)
                    if self.armed.is_set() and packet[0] >> 4 == 4:  # PUBACK
                        self.armed.clear()
                        self.cuts += 1
                        raise ConnectionAbortedError
                    upstream.sendall(packet)
                    buf = buf[size:]
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()


def _take_packet(buf: bytes) -> bytes | None:
    """The first complete MQTT packet in `buf`, or None."""
    if len(buf) < 2:
        return None
    length, shift, i = 0, 0, 1
    while True:
        if i >= len(buf):
            return None
        byte = buf[i]
        length |= (byte & 0x7F) << shift
        shift += 7
        i += 1
        if byte < 0x80:
            break
    end = i + length
    return buf[:end] if len(buf) >= end else None
