"""Test-side helpers for the alert engine: engines in-process (a thread) or as processes,
publishing readings, reading alerts back. Client ids start with alerts-engine-."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from alerts.detectors import load_detectors
from alerts.service import AlertService
from simulators.devices import Device
from simulators.publisher import Publisher
from tests.conftest import wait_for
from urbanwatch.settings import Settings


def engine_settings(database_url: str, mqtt_url: str, prefix: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "mqtt_url": mqtt_url,
        "mqtt_topic_prefix": prefix,
        "alerts_flush_interval_s": 0.02,
        "alerts_rules_poll_s": 0.2,
        "alerts_claim_wait_s": 15,
        **overrides,
    }
    return Settings(**values)


@contextmanager
def running_engine(settings: Settings, **kwargs: Any) -> Iterator[AlertService]:
    service = AlertService(settings, **kwargs)
    service.start()
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        wait_for(service.ready.is_set, timeout=10, what="the engine's subscriptions")
        yield service
    finally:
        service.stop.set()
        thread.join(timeout=10)


def publish_through_engine(
    database_url: str,
    mqtt_url: str,
    prefix: str,
    readings: Iterable[tuple[Device, dict[str, Any]]],
    client_id: str,
) -> int:
    """Publish simulated `readings` as fast as the broker takes them to an engine with the
    detectors the database holds (as `urbanwatch alerts run` wires them); returns, with the
    count, once the engine has taken every one."""
    settings = engine_settings(database_url, mqtt_url, prefix)
    with psycopg.connect(database_url) as setup:
        detectors = load_detectors(setup)
    with running_engine(settings, detectors=detectors) as engine:
        publisher = Publisher(mqtt_url, prefix, client_id=client_id)
        publisher.connect()
        try:
            for device, payload in readings:
                publisher.add(device, payload)
        finally:
            publisher.close()
        sent = publisher.messages
        wait_for(lambda: engine.stats["messages"] >= sent, timeout=120, what=f"{sent} messages")
    return sent


def alerts(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    """(rule_id, subject, status, active, severity, flap_count) of every alert, by id."""
    return conn.execute(
        "SELECT rule_id, subject, status, active, severity, flap_count FROM alerts ORDER BY id"
    ).fetchall()


def events(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    """(rule_id, subject, event) of every alert event, in order."""
    return conn.execute(
        "SELECT a.rule_id, a.subject, e.event FROM alert_events e JOIN alerts a "
        "ON a.id = e.alert_id ORDER BY e.id"
    ).fetchall()


class EngineProcess:
    """`urbanwatch alerts run` as a real process, to be killed with SIGKILL."""

    def __init__(self, database_url: str, mqtt_url: str, prefix: str, **env: str):
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "MQTT_URL": mqtt_url,
            "MQTT_TOPIC_PREFIX": prefix,
            "ALERTS_FLUSH_INTERVAL_S": "0.02",
            "ALERTS_BATCH_SIZE": "50",
            **env,
        }
        self.lines: list[str] = []
        self.start()

    def start(self) -> None:
        self.lines.clear()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "urbanwatch.cli", "alerts", "run"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()
        wait_for(
            lambda: (
                any("engine subscribed" in line for line in self.lines)
                or self.proc.poll() is not None
            ),
            timeout=30,
            what="the engine to start",
        )
        assert self.proc.poll() is None, "".join(self.lines)

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.lines.append(line)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)
