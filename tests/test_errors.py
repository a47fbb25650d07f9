"""How an exception that ended a command becomes the one line the user sees."""

from __future__ import annotations

import psycopg
import pytest

from urbanwatch.errors import RuntimeProblem, UsageError, explain

WHERE = "127.0.0.1:5432/urbanwatch"


@pytest.mark.parametrize(
    ("exc", "status", "line"),
    [
        (UsageError("--scale: 'huge' is not small"), 2, "error: --scale: 'huge' is not small"),
        (RuntimeProblem("cannot create /x:\n  denied"), 1, "cannot create /x: denied"),
        (
            psycopg.OperationalError(
                'connection failed: connection to server at "127.0.0.1", port 1 failed: '
                "Connection refused\n\tIs the server running on that host?"
            ),
            1,
            f"cannot reach the database at {WHERE}: connection refused",
        ),
        (
            psycopg.OperationalError(
                'connection failed: connection to server on socket "/run/postgresql/.s.PGSQL.5432"'
                ' failed: FATAL:  role "bob" does not exist'
            ),
            1,
            f'cannot reach the database at {WHERE}: role "bob" does not exist',
        ),
        (
            PermissionError(13, "Permission denied", "/etc/x.csv"),
            1,
            "/etc/x.csv: permission denied",
        ),
        (
            ZeroDivisionError("division by zero"),
            1,
            "internal error: ZeroDivisionError: division by zero",
        ),
        (
            ConnectionRefusedError(111, "Connection refused"),
            1,
            "internal error: ConnectionRefusedError: [Errno 111] Connection refused",
        ),
    ],
    ids=["usage", "runtime", "refused", "fatal", "file", "bug", "oserror-without-file"],
)
def test_explain(exc, status, line):
    assert explain(exc, WHERE) == (status, line)


def test_a_database_error_before_the_settings_were_read_is_internal():
    assert explain(psycopg.OperationalError("boom"), None) == (
        1,
        "internal error: OperationalError: boom",
    )
