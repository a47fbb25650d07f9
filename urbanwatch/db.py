"""Connections: create the database if it is missing, open connections and pools."""

from __future__ import annotations

import contextlib
import logging

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

logger = logging.getLogger(__name__)

# Applications name themselves so `pg_stat_activity` shows who holds a connection.
APPLICATION_NAME = "urbanwatch"


def ensure_database(url: str) -> bool:
    """Create the database named in `url` if it does not exist; True when it was created."""
    params = conninfo_to_dict(url)
    name = str(params.get("dbname") or params.get("user") or "postgres")
    admin_url = make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        logger.info("created database %s", name)
        return True


def connect(
    url: str, *, autocommit: bool = False, name: str = APPLICATION_NAME
) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=autocommit, application_name=name)


def create_pool(
    url: str, *, min_size: int = 1, max_size: int = 8, name: str = APPLICATION_NAME
) -> ConnectionPool:
    return ConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        kwargs={"application_name": name},
        open=True,
    )


def describe(url: str) -> str:
    """`host:port/dbname` for log lines, without any password."""
    p = conninfo_to_dict(url)
    return f"{p.get('host', 'localhost')}:{p.get('port', 5432)}/{p.get('dbname', '')}"


class LazyConnection:
    """One connection, opened on first use; after an error `reset()` drops it and the next
    `get()` reconnects. For long-running workers that must outlive database restarts."""

    def __init__(self, url: str, name: str = APPLICATION_NAME):
        self.url, self.name = url, name
        self._conn: psycopg.Connection | None = None

    def get(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.url, name=self.name)
        return self._conn

    def reset(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        self._conn = None
