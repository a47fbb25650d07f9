"""Fixtures on real servers: a fresh migrated PostgreSQL database per test and a Mosquitto
broker running the project's own configuration, with a unique topic prefix per test.

TEST_DATABASE_URL   an admin connection to the test server (default 127.0.0.1:5432)
TEST_MQTT_URL       use this broker instead of starting one (default: start one)
TIMESCALE_TEST_URL  an admin connection to a server that can load TimescaleDB; when unset,
                    the TEST_DATABASE_URL server is used if it can load the extension
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tests.mqtt_broker_auth import AuthBroker
from urbanwatch.migrate import migrate, timescale_loadable

ROOT = Path(__file__).resolve().parents[1]

# Property tests: the same examples on every CI run (a failure is a bug, never luck of the
# draw); new random examples on a developer's machine. HYPOTHESIS_PROFILE picks one.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://127.0.0.1:5432/postgres")


def wait_for(
    condition: Callable[[], object],
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str = "condition",
) -> object:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def _create_database(admin_url: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query += sql.SQL(" TEMPLATE {} STRATEGY FILE_COPY").format(sql.Identifier(template))
        conn.execute(query)
    return make_conninfo(admin_url, dbname=name)


def _drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def template_db() -> Iterator[str]:
    """A migrated (plain storage) database that every test database is copied from."""
    name = f"uw_tmpl_{os.getpid()}"
    _drop_database(ADMIN_URL, name)
    url = _create_database(ADMIN_URL, name)
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn, "plain")
    yield name
    _drop_database(ADMIN_URL, name)


@pytest.fixture
def database_url(template_db: str) -> Iterator[str]:
    """A fresh, migrated database of this test's own."""
    name = f"uw_test_{uuid.uuid4().hex[:12]}"
    url = _create_database(ADMIN_URL, name, template=template_db)
    yield url
    _drop_database(ADMIN_URL, name)


@pytest.fixture
def empty_database() -> Iterator[str]:
    """A database with nothing in it, for migration tests."""
    name = f"uw_empty_{uuid.uuid4().hex[:12]}"
    url = _create_database(ADMIN_URL, name)
    yield url
    _drop_database(ADMIN_URL, name)


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def _timescale_admin_url() -> tuple[str | None, str]:
    candidates = (
        [os.environ["TIMESCALE_TEST_URL"]] if os.environ.get("TIMESCALE_TEST_URL") else [ADMIN_URL]
    )
    for url in candidates:
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
                if timescale_loadable(conn):
                    return url, ""
        except psycopg.OperationalError as exc:
            return None, f"cannot reach {url}: {exc}"
    return None, (
        "TimescaleDB is not loadable on the test server (not installed or not in "
        "shared_preload_libraries); set TIMESCALE_TEST_URL to a server that has it"
    )


@pytest.fixture
def timescale_empty_database() -> Iterator[str]:
    """An empty database on a server that can load TimescaleDB, or a skip saying why not."""
    admin, reason = _timescale_admin_url()
    if admin is None:
        pytest.skip(reason)
    name = f"uw_ts_{uuid.uuid4().hex[:12]}"
    url = _create_database(admin, name)
    yield url
    _drop_database(admin, name)


@pytest.fixture(params=["plain", pytest.param("timescale", marks=pytest.mark.timescale)])
def storage_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh migrated database of this test's own, on each storage in turn: plain (copied
    from the template) and TimescaleDB (migrated here: a TimescaleDB database cannot be a
    template while its job scheduler is connected; skips with the reason where absent).
    A module runs its tests on both by overriding `database_url` with this fixture."""
    if request.param == "plain":
        admin = ADMIN_URL
        name = f"uw_test_{uuid.uuid4().hex[:12]}"
        url = _create_database(admin, name, template=request.getfixturevalue("template_db"))
    else:
        timescale, reason = _timescale_admin_url()
        if timescale is None:
            pytest.skip(reason)
        admin = timescale
        name = f"uw_ts_{uuid.uuid4().hex[:12]}"
        url = _create_database(admin, name)
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn, "timescale")
    yield url
    _drop_database(admin, name)


# --- MQTT ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """A real Mosquitto with the project's configuration (deploy/mosquitto/conf.d) on a free
    loopback port; `persistence` keeps sessions and queues across `restart()`."""

    def __init__(self, folder: Path, persistence: bool = False, extra_conf: str = ""):
        self.binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(self.binary).exists():
            pytest.fail(
                "mosquitto is not installed (apt-get install mosquitto) and TEST_MQTT_URL is unset"
            )
        self.port = _free_port()
        self.folder = folder
        folder.chmod(0o777)  # mosquitto drops root privileges before writing its database
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"persistence {'true' if persistence else 'false'}\n"
            f"persistence_location {folder}/\n"
            f"{extra_conf}"
            f"include_dir {ROOT / 'deploy' / 'mosquitto' / 'conf.d'}\n"
        )
        self.log_path = folder / "mosquitto.log"
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def _accepting(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT
            )
        wait_for(self._accepting, timeout=10, what="mosquitto to accept connections")

    def stop(self) -> None:
        """A clean stop (SIGTERM): Mosquitto saves its in-memory database first."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def mqtt_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The suite's broker, shared by tests (each has its own topic prefix)."""
    if os.environ.get("TEST_MQTT_URL"):
        yield os.environ["TEST_MQTT_URL"]
        return
    broker = Broker(tmp_path_factory.mktemp("mosquitto"))
    yield broker.url
    broker.stop()


@pytest.fixture
def persistent_broker() -> Iterator[Broker]:
    """A broker of this test's own, with persistence on, that the test may restart. Its
    folder is outside pytest's private tmp tree: Mosquitto drops root and must write there."""
    folder = Path(tempfile.mkdtemp(prefix="uw-broker-"))
    broker = Broker(folder, persistence=True)
    yield broker
    broker.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def topic_prefix() -> str:
    return f"uwtest-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def auth_broker() -> Iterator[AuthBroker]:
    """A broker of this test's own that enforces accounts and ACLs (tests/mqtt_broker_auth.py):
    nobody gets in until `urbanwatch broker sync` writes its files."""
    folder = Path(tempfile.mkdtemp(prefix="uw-broker-auth-"))
    broker = AuthBroker(folder)
    yield broker
    broker.stop()
    shutil.rmtree(folder, ignore_errors=True)
