"""The `urbanwatch` command as a user meets it: the real CLI in a subprocess, against real
servers. Every mistake ends in one line on stderr and exit status 2 (usage) or 1 (runtime),
with a traceback only under -v; Ctrl-C ends in 130."""

from __future__ import annotations

import io
import os
import shlex
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.fleet import fleet_size
from simulators.scenario import SCENARIO_DIR, load_scenario
from tests.conftest import wait_for
from urbanwatch import db
from urbanwatch.cli import main
from urbanwatch.migrate import timescale_loadable
from urbanwatch.settings import Settings

NOWHERE_DB = "postgresql://127.0.0.1:1/x"  # nothing listens on port 1
NOWHERE_MQTT = "mqtt://127.0.0.1:1"
DB_DOWN = "urbanwatch: cannot reach the database at 127.0.0.1:1/x: connection refused"
DRY_RUN_END = "dry run: nothing was generated, written, imported or published"
SHIPPED = ", ".join(sorted(path.stem for path in SCENARIO_DIR.glob("*.yaml")))


@dataclass(frozen=True)
class Case:
    argv: list[str]
    status: int
    says: str  # what the one line on stderr contains; {tmp} is the cases' folder
    env: dict[str, str] = field(default_factory=dict)


def case(command_line: str, status: int, says: str = "", **env: str) -> Case:
    return Case(shlex.split(command_line), status, says, env)


# No case reaches a server: the database and the broker they are given do not exist, so a
# usage error found too late would show up as a runtime error.
# fmt: off
ONE_LINE_ERRORS = {
    "scale": case("simulate run --scale huge", 2, "argument --scale: 'huge' is not small, city or a device count"),
    "speed": case("simulate run --speed 0", 2, "argument --speed: '0' is not a number above 0"),
    "days": case("simulate backfill --days -1", 2, "argument --days: '-1' is not a number above 0"),
    "start": case("simulate run --start yesterday", 2, "argument --start: 'yesterday' is not an ISO-8601 time"),
    "start-too-old": case("simulate run --start 2020-01-01", 2, "error: --start/--speed/--duration/--behind: the replayed window starts more than 71 h ago"),
    "end-in-future": case("simulate backfill --end 2999-01-01", 2, "error: --end: 2999-01-01T00:00:00 is in the future"),
    "scenario": case("simulate run --scenario nope", 2, f"argument --scenario: no scenario 'nope' (shipped: {SHIPPED})"),
    "bogus-flag": case("--bogus", 2, "urbanwatch: error: unrecognized arguments: --bogus"),
    "no-such-file": case("devices import {tmp}/missing.csv", 2, "urbanwatch: error: no such file: {tmp}/missing.csv"),
    "batch-size-setting": case("migrate", 2, "urbanwatch: error: setting INGEST_BATCH_SIZE=-5: must be ≥ 1", INGEST_BATCH_SIZE="-5"),
    "mqtt-url-setting": case("simulate run", 2, "urbanwatch: error: setting MQTT_URL=http://x: must be mqtt://HOST[:PORT]", MQTT_URL="http://x"),
    "database-url-setting": case("rollup", 2, "urbanwatch: error: setting DATABASE_URL=nonsense: not a PostgreSQL URL", DATABASE_URL="nonsense"),
    "db-migrate": case("migrate", 1, DB_DOWN),
    "db-import": case("devices import {tmp}/fleet.csv", 1, DB_DOWN),
    "db-count": case("devices count", 1, DB_DOWN),
    "db-rollup": case("rollup", 1, DB_DOWN),
    "db-fleet": case("simulate fleet", 1, DB_DOWN),
    "db-run": case("simulate run", 1, DB_DOWN),
    "db-backfill": case("simulate backfill --no-import", 1, DB_DOWN),
    "broker-down": case("simulate run --no-import --duration 1", 1, f"urbanwatch: cannot reach the MQTT broker at {NOWHERE_MQTT}: connection refused"),
    "state-dir-unwritable": case("simulate fleet --no-import", 1, "urbanwatch: cannot create {tmp}/a-file/state: not a directory (set URBANWATCH_STATE_DIR to a writable directory)", URBANWATCH_STATE_DIR="{tmp}/a-file/state"),
}
OTHER_RUNS = {
    "no-command": case("", 2),
    "group-without-action": case("devices", 2),
    "verbose": case("-v rollup", 1),
    "dry-run": case("simulate run --scenario demo --dry-run", 0),
}
# fmt: on


def cli_env(**settings: str) -> dict[str, str]:
    """The test process's environment without its urbanwatch settings, plus `settings`."""
    names = {name.upper() for name in Settings.model_fields} | {"XDG_STATE_HOME"}
    env = {k: v for k, v in os.environ.items() if k not in names}
    return {**env, "DATABASE_URL": NOWHERE_DB, "MQTT_URL": NOWHERE_MQTT, **settings}


def run_cli(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "urbanwatch.cli", *argv],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@dataclass(frozen=True)
class Runs:
    tmp: Path  # what {tmp} stands for
    ran: dict[str, subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """Every case above, run at once (a run is mostly Python starting up)."""
    tmp = tmp_path_factory.mktemp("cli")
    (tmp / "fleet.csv").write_text(
        "device_id,kind,district,lat,lon\nmh-1,manhole,wenfeng,36.1,114.3\n"
    )
    (tmp / "a-file").write_text("")

    def run(item: tuple[str, Case]) -> subprocess.CompletedProcess[str]:
        name, c = item
        env = cli_env(URBANWATCH_STATE_DIR=str(tmp / name / "state"))
        env.update({k: v.format(tmp=tmp) for k, v in c.env.items()})
        return run_cli([a.format(tmp=tmp) for a in c.argv], env, tmp)

    cases = {**ONE_LINE_ERRORS, **OTHER_RUNS}
    with ThreadPoolExecutor(max_workers=4) as pool:
        return Runs(tmp, dict(zip(cases, pool.map(run, cases.items()), strict=True)))


@pytest.mark.parametrize("name", ONE_LINE_ERRORS)
def test_a_mistake_ends_in_one_line(name, runs):
    c, ran = ONE_LINE_ERRORS[name], runs.ran[name]
    says = c.says.format(tmp=runs.tmp)
    assert "Traceback" not in ran.stderr
    assert ran.stderr.count("\n") == 1, ran.stderr
    assert ran.stderr.startswith("urbanwatch")
    assert says in ran.stderr
    assert ran.returncode == c.status, ran.stderr


def test_no_command_prints_the_help_and_exits_2(runs):
    ran = runs.ran["no-command"]
    assert ran.returncode == 2
    assert ran.stderr.startswith("usage: urbanwatch")
    for command in ("migrate", "devices", "rollup", "ingest", "api", "simulate"):
        assert f"    {command} " in ran.stderr  # every command is listed, services included


def test_a_command_group_without_its_action_prints_its_help(runs):
    ran = runs.ran["group-without-action"]
    assert ran.returncode == 2
    assert ran.stderr.startswith("usage: urbanwatch devices")
    assert "import" in ran.stderr and "count" in ran.stderr


def test_verbose_shows_the_traceback_then_the_line(runs):
    ran = runs.ran["verbose"]
    assert ran.returncode == 1
    assert ran.stderr.startswith("Traceback (most recent call last)")
    assert "psycopg.OperationalError" in ran.stderr
    assert ran.stderr.splitlines()[-1] == DB_DOWN


def test_dry_run_prints_the_plan_and_touches_nothing(runs):
    ran = runs.ran["dry-run"]
    assert (ran.returncode, ran.stderr) == (0, "")
    lines = ran.stdout.splitlines()
    assert lines[0].startswith(f"fleet: seed 1, scale small: about {fleet_size('small').total} ")
    events = len(load_scenario("demo").events)
    assert f"scenario: demo, {events} event(s), with background faults" in lines
    assert f"publish: {NOWHERE_MQTT} under urbanwatch/, one message per reading" in lines
    assert lines[-1] == DRY_RUN_END
    assert not (runs.tmp / "dry-run").exists()  # no state dir made


# --- errors that need a database in a given state ------------------------------------


def one_line_error(argv: list[str], database: str, tmp_path: Path) -> tuple[int, str]:
    ran = run_cli(
        argv, cli_env(DATABASE_URL=database, URBANWATCH_STATE_DIR=str(tmp_path)), tmp_path
    )
    assert "Traceback" not in ran.stderr
    assert ran.stderr.count("\n") == 1, ran.stderr
    return ran.returncode, ran.stderr.rstrip("\n")


def test_migrate_refuses_to_switch_a_plain_database_to_timescale(database_url, tmp_path):
    assert one_line_error(["migrate", "--storage", "timescale"], database_url, tmp_path) == (
        1,
        f"urbanwatch: cannot migrate {db.describe(database_url)}: this database already uses plain "
        "storage; it cannot switch to timescale",
    )


def test_migrate_says_when_the_server_cannot_load_timescale(empty_database, tmp_path):
    with psycopg.connect(empty_database) as conn:
        if timescale_loadable(conn):
            pytest.skip("this server can load TimescaleDB, so it cannot show the refusal")
    status, line = one_line_error(["migrate", "--storage", "timescale"], empty_database, tmp_path)
    assert status == 1
    assert line.startswith(
        f"urbanwatch: cannot migrate {db.describe(empty_database)}: TimescaleDB "
    )
    assert "this server cannot load it" in line


def test_a_database_without_the_schema_is_named(empty_database, tmp_path):
    assert one_line_error(["devices", "count"], empty_database, tmp_path) == (
        1,
        f'urbanwatch: database error at {db.describe(empty_database)}: relation "devices" does not '
        "exist (has `urbanwatch migrate` run on it?)",
    )


def test_ctrl_c_exits_130_without_a_traceback(database_url, tmp_path):
    """`migrate` waits for the migration lock this test holds, and says so; then the user
    presses Ctrl-C. The child starts with SIGINT at its default, as from a terminal: a suite
    started in the background by a non-interactive shell (`make test &`, a CI runner) ignores
    SIGINT, a child inherits that, and Python then installs no KeyboardInterrupt handler."""
    with psycopg.connect(database_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(x'75726277'::int)")  # urbanwatch.migrate's key
        env = cli_env(DATABASE_URL=database_url)
        proc = subprocess.Popen(
            [sys.executable, "-m", "urbanwatch.cli", "migrate"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        lines: list[str] = []
        with ThreadPoolExecutor(1) as reader:
            assert proc.stderr is not None
            done = reader.submit(lambda: [lines.append(line) for line in proc.stderr])
            try:
                wait_for(
                    lambda: any("waiting for it to finish" in line for line in lines),
                    timeout=60,
                    what="migrate to say it waits for the lock",
                )
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=60)
            finally:
                proc.kill()
                done.result(timeout=60)
    assert proc.returncode == 130
    assert lines[-1] == "urbanwatch: interrupted\n"
    assert not any("Traceback" in line for line in lines), lines


# --- any option value: accepted, or refused in one line naming the option ------------

OPTIONS = [
    ("run", "--scale"),
    ("backfill", "--scale"),
    ("run", "--speed"),
    ("backfill", "--days"),
    ("run", "--start"),
    ("backfill", "--end"),
    ("run", "--seed"),
    ("backfill", "--seed"),
    ("run", "--batch"),
]
arg_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"))
values = st.one_of(
    arg_text,
    st.integers().map(str),
    st.floats().map(str),
    st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: d.isoformat()),
    st.sampled_from(["small", "city", "50", "1e309", "-0", "nan", " 7 ", "1_000", "٣٠٠"]),
)


@given(option=st.sampled_from(OPTIONS), value=values)
@settings(max_examples=150, deadline=None)
def test_any_option_value_is_accepted_or_refused_in_one_line(option, value):
    """In-process, for speed: the same `main` the console script runs, on dry runs."""
    command, flag = option
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            status = main(["simulate", command, "--dry-run", "--no-import", f"{flag}={value}"])
        except SystemExit as exc:  # argparse refuses by exiting
            status = exc.code
    assert "Traceback" not in err.getvalue()
    if status == 0:
        assert err.getvalue() == ""
        assert out.getvalue().splitlines()[-1] == DRY_RUN_END
    else:
        assert status == 2, err.getvalue()
        assert err.getvalue().count("\n") == 1, err.getvalue()
        assert flag in err.getvalue()
