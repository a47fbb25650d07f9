"""What a command raises when it cannot do what it was asked, and the one line the user sees.

The contract for every `urbanwatch` command, the core ones and those a service registers
through the `urbanwatch.commands` entry-point group (ingest, api, simulate, alerts, ...):

- Raise `UsageError` when what the user typed or set is wrong (an option value, a file that
  is not there, a setting): exit status 2.
- Raise `RuntimeProblem` when the request was fine but the world is not (a database that
  already uses another storage, an unwritable directory, a broker that does not answer):
  exit status 1.
- The message is one line that names the offending value and says what is accepted or what
  to do, e.g. `--scale: 'huge' is not small, city or a device count`. No "error:" prefix
  and no traceback: `urbanwatch.cli.main` adds `urbanwatch: error: ` (usage) or
  `urbanwatch: ` (runtime), and prints the traceback only with `-v`.
- Do not catch what you cannot explain better: `main` reports a psycopg error as
  `cannot reach the database at HOST:PORT/DB: <reason>` (connection failures) or
  `database error at HOST:PORT/DB: <reason>`, an OSError on a file as `<file>: <reason>`,
  and anything else as `internal error: ...` with exit status 1.
- Option values are best checked by argparse `type=` functions (`urbanwatch.arguments`);
  argparse then exits 2 with one line of its own.
- Ctrl-C ends the command with exit status 130 and no traceback; a command whose normal
  way to stop is Ctrl-C may catch KeyboardInterrupt, clean up and return 0.
- A command may still return a non-zero status for an outcome it has already reported
  (`devices import` returns 1 when some rows were bad).
"""

from __future__ import annotations

import re

import psycopg

EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


class CommandError(Exception):
    """A problem the user can act on; the message is the one line they see."""

    exit_status = EXIT_RUNTIME
    prefix = ""


class UsageError(CommandError):
    """The command line, a file named on it, or a setting is wrong."""

    exit_status = EXIT_USAGE
    prefix = "error: "


class RuntimeProblem(CommandError):
    """The request was valid, but the database, the broker or the file system refused it."""


# libpq's wording around the reason a connection failed, which says nothing to the user:
# `connection failed: connection to server at "127.0.0.1", port 1 failed: FATAL:  ...`
_CONNECTION_NOISE = re.compile(
    r"^(connection failed: )?(connection to server (at|on) .*? failed: )?(FATAL: +)?"
)


def one_line(text: str) -> str:
    """The non-blank lines of `text` joined by spaces."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def explain(exc: Exception, database: str | None) -> tuple[int, str]:
    """The exit status and the line to print (after `urbanwatch: `) for an exception that
    ended a command; `database` is `host:port/dbname`, when the settings were read."""
    if isinstance(exc, CommandError):
        return exc.exit_status, exc.prefix + one_line(str(exc))
    if isinstance(exc, psycopg.Error) and database is not None:
        return EXIT_RUNTIME, explain_database_error(exc, database)
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return EXIT_RUNTIME, f"{exc.filename}: {exc.strerror.lower()}"
    return EXIT_RUNTIME, f"internal error: {type(exc).__name__}: {one_line(str(exc))}"


def explain_database_error(exc: psycopg.Error, database: str) -> str:
    if isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None:
        first = (str(exc).splitlines() or [""])[0]
        reason = _CONNECTION_NOISE.sub("", first.strip())
        return f"cannot reach the database at {database}: {_lower_first(reason)}"
    reason = exc.diag.message_primary or one_line(str(exc))
    if isinstance(exc, psycopg.errors.UndefinedTable):
        reason += " (has `urbanwatch migrate` run on it?)"
    return f"database error at {database}: {reason}"


def _lower_first(text: str) -> str:
    """`Connection refused` -> `connection refused`, but `FATAL` and `TLS` stay."""
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text
