"""A Mosquitto that enforces the broker accounts (docs/security-devices.md), for
tests/test_broker_auth*.py: anonymous access off, password and ACL files written by
`urbanwatch broker sync` into the broker's own folder, reloaded with SIGHUP through its pid
file, client id = username. The suite's default broker (tests/conftest.py) stays open.

`Client` is a device or service as the broker sees it: it connects with a username and
password and reports what the broker answered (CONNACK and PUBACK reason codes, drops).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
CONF_D = ROOT / "deploy" / "mosquitto" / "conf.d"
NOT_AUTHORIZED = 135  # MQTT 5 reason code: CONNACK, PUBACK and SUBACK
ACCEPTED = (0, 16)  # PUBACK: success, or success with "no matching subscribers"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def broker_user_owner() -> str | None:
    """Mosquitto started as root drops to the `mosquitto` user, which must read the files."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("mosquitto")
    except KeyError:
        return None
    return "mosquitto"


class AuthBroker:
    def __init__(self, folder: Path):
        from tests.conftest import wait_for

        self.wait_for = wait_for
        self.binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.folder = folder
        folder.chmod(0o777)
        self.auth_dir = folder / "auth"
        self.auth_dir.mkdir()
        self.owner = broker_user_owner()
        for name in ("passwd", "acl"):  # empty until the first sync: nobody gets in
            (self.auth_dir / name).touch(mode=0o644)
        self.pid_file = folder / "mosquitto.pid"
        self.port = _free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "persistence false\n"
            f"pid_file {self.pid_file}\n"
            f"include_dir {CONF_D}\n"
            # After the include: these override its development default (allow_anonymous).
            "allow_anonymous false\n"
            "use_username_as_clientid true\n"
            f"password_file {self.auth_dir / 'passwd'}\n"
            f"acl_file {self.auth_dir / 'acl'}\n"
        )
        self.log_path = folder / "mosquitto.log"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT
            )
        wait_for(self._accepting, timeout=10, what="mosquitto to accept connections")
        wait_for(self.pid_file.exists, timeout=10, what="mosquitto's pid file")

    def _accepting(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def env(self) -> dict[str, str]:
        """The settings that make `devices credentials ...` and `broker sync` apply here."""
        env = {"BROKER_AUTH_DIR": str(self.auth_dir), "BROKER_PID_FILE": str(self.pid_file)}
        if self.owner:
            env["BROKER_AUTH_OWNER"] = self.owner
        return env

    def reloads(self) -> int:
        return self.log_path.read_text(errors="replace").count("Reloading config.")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


class Client:
    """One MQTT 5 connection with credentials; `connect()` returns the CONNACK reason code
    (0 = accepted, 135 = not authorised, ...)."""

    def __init__(self, url: str, username: str | None, password: str | None, client_id: str = ""):
        from tests.conftest import wait_for

        self.wait_for = wait_for
        self.host, port = url.removeprefix("mqtt://").split(":")
        self.port = int(port)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"broker-auth-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.connack: int | None = None
        self.disconnects = 0
        self.received: list[tuple[str, bytes]] = []
        self.subacks: list[int] = []
        self._pubacks: dict[int, int] = {}
        self._lock = threading.Lock()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.connack = reason.value

    def _on_disconnect(self, *args: Any) -> None:
        self.disconnects += 1

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        with self._lock:
            self._pubacks[mid] = reason.value

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self._lock:
            self.received.append((message.topic, message.payload))

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        self.subacks.extend(r.value for r in reasons)

    def connect(self) -> int:
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        self.wait_for(lambda: self.connack is not None, what="the broker's CONNACK")
        assert self.connack is not None
        if self.connack != 0:
            self.client.loop_stop()
        return self.connack

    def publish(self, topic: str, payload: object) -> int:
        """Publish at QoS 1 and return the PUBACK's reason code (135: not authorised)."""
        body = payload if isinstance(payload, bytes | str) else orjson.dumps(payload)
        info = self.client.publish(topic, body, qos=1)
        self.wait_for(lambda: info.mid in self._pubacks, what=f"PUBACK of {topic}")
        return self._pubacks[info.mid]

    def subscribe(self, topic: str) -> int:
        before = len(self.subacks)
        self.client.subscribe(topic, qos=1)
        self.wait_for(lambda: len(self.subacks) > before, what=f"SUBACK of {topic}")
        return self.subacks[-1]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connack_of(url: str, username: str | None, password: str | None) -> int:
    """What the broker answers a new connection with these credentials."""
    client = Client(url, username, password)
    try:
        return client.connect()
    finally:
        client.close()
