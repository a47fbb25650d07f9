"""`urbanwatch simulate fleet|run|backfill`: a realistic Anyang fleet, live or as history.

This module is the command line: option values are checked here by argparse (`type=`);
what the commands do is in simulators/commands.py. Errors follow urbanwatch/errors.py.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import yaml

from simulators.commands import cmd_backfill, cmd_fleet, cmd_run
from simulators.fleet import SCALES, fleet_size
from simulators.scenario import SCENARIO_DIR, Scenario, load_scenario
from urbanwatch.arguments import iso_time, positive_number, whole_number

# Bounds on option values: past them an option is surely mistyped, and the window
# arithmetic stays within the dates Python can represent.
MAX_DEVICES = 1_000_000  # 14 x the city fleet; a fleet is built in memory
MAX_SPEED = 100_000  # replays ingest's whole 71 h window in under 3 s
MAX_DURATION_S = 366 * 86_400  # a year; a run's faults are planned up front
MAX_BEHIND_S = 71 * 3600  # ingest refuses readings older than 72 h
MAX_BACKFILL_DAYS = 3660  # ten years (90 city days are ~54 GB of readings)
MAX_JOBS = 64  # each is a forked writer with its own database connection


def fleet_scale(text: str) -> str:
    """`small`, `city` or a device count (returned without sign, blanks or underscores)."""
    if text in SCALES:
        return text
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 0 < count <= MAX_DEVICES:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not small, city or a device count up to {MAX_DEVICES:,}"
        )
    try:
        fleet_size(str(count))
    except ValueError as exc:  # too few devices to hold every kind
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
    return str(count)


def scenario_file(text: str) -> Scenario:
    """A shipped scenario's name or a scenario YAML file, loaded and validated."""
    try:
        return load_scenario(text)
    except (ValueError, OSError, yaml.YAMLError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--seed", type=int, default=1, help="random seed: same seed, same fleet (default 1)"
    )
    p.add_argument(
        "--scale",
        type=fleet_scale,
        default="small",
        help="small (~400 devices), city (~71k: 30k covers, 40k lamps) or a device count N",
    )
    p.add_argument(
        "--no-import",
        action="store_true",
        help="do not upsert the fleet into the device registry first",
    )
    p.add_argument(
        "--truth",
        type=Path,
        help="where to write the ground-truth JSON (default: truth-<command>-<scale>-<seed>"
        ".json in URBANWATCH_STATE_DIR, else $XDG_STATE_HOME/urbanwatch or "
        "~/.local/state/urbanwatch)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="check the options, print what would be done and exit; nothing is generated, "
        "written, imported or published",
    )


def _scenario_args(p: argparse.ArgumentParser) -> None:
    shipped = ", ".join(sorted(x.stem for x in SCENARIO_DIR.glob("*.yaml")))
    p.add_argument(
        "--scenario",
        type=scenario_file,
        help=f"a scenario YAML file or a shipped name ({shipped})",
    )
    p.add_argument(
        "--no-background",
        action="store_true",
        help="no background faults: only the scenario's events happen",
    )


def register(sub: Any) -> None:
    sim = sub.add_parser(
        "simulate",
        help="simulate a device fleet (fleet, run, backfill)",
        description="Simulated Anyang devices of all four kinds, behaving as "
        "docs/domain.md describes. See docs/simulators.md.",
    )
    sim.set_defaults(func=None, parser=sim)
    ssub = sim.add_subparsers(dest="simulate_command", metavar="ACTION")
    _register_fleet(ssub)
    _register_run(ssub)
    _register_backfill(ssub)


def _register_fleet(ssub: Any) -> None:
    p = ssub.add_parser(
        "fleet",
        help="generate a fleet registry file and import it",
        description="Write the fleet as CSV or GeoJSON (by the file suffix), "
        "import it into the registry, and write the fleet's ground truth "
        "(DMA leakage, waterlogging ledger).",
    )
    _common(p)
    p.add_argument(
        "--out",
        type=Path,
        help="registry file (default: fleet-<scale>-<seed>.csv where --truth goes by default)",
    )
    p.set_defaults(func=cmd_fleet)


def _register_run(ssub: Any) -> None:
    p = ssub.add_parser(
        "run",
        help="publish live over MQTT",
        description="Publish readings live at QoS 1. With --speed > 1 simulated "
        "time runs faster but never passes the wall clock: the run replays a "
        "window ending now (docs/simulators.md). Ctrl-C stops cleanly.",
    )
    _common(p)
    _scenario_args(p)
    p.add_argument(
        "--speed",
        type=positive_number(MAX_SPEED),
        default=1.0,
        help="simulated seconds per wall second",
    )
    p.add_argument(
        "--duration",
        type=positive_number(MAX_DURATION_S),
        help="wall seconds to run (default: until Ctrl-C)",
    )
    p.add_argument(
        "--start", type=iso_time, help="simulated start, ISO-8601 (default: see --speed)"
    )
    p.add_argument(
        "--behind",
        type=whole_number(0, MAX_BEHIND_S),
        default=0,
        help="keep simulated time this many seconds behind the wall clock: a --speed > 1 "
        "run catches up with (wall clock − BEHIND), then runs in real time that far behind "
        "(make demo: a night-time clock by day; default 0)",
    )
    p.add_argument(
        "--stagger",
        type=positive_number(MAX_DURATION_S),
        help="every device reports first within this many "
        "seconds (default: within its own interval)",
    )
    p.add_argument(
        "--batch",
        type=whole_number(0),
        default=0,
        help="gateway batches of this many readings "
        "(default 0: one message per reading on the device's own topic)",
    )
    p.add_argument(
        "--rate-cap", type=positive_number(), help="at most this many readings per second"
    )
    p.add_argument("--client-id", help="MQTT client id (default urbanwatch-sim-<pid>)")
    p.set_defaults(func=cmd_run)


def _register_backfill(ssub: Any) -> None:
    p = ssub.add_parser(
        "backfill",
        help="write days of history straight into the database",
        description="Simulate the last --days and COPY the readings straight "
        "into <kind>_readings (around ingest, which refuses readings older than "
        "72 h), replacing this fleet's readings in the window, then refresh "
        "the hourly rollups.",
    )
    _common(p)
    _scenario_args(p)
    p.add_argument(
        "--days",
        type=positive_number(MAX_BACKFILL_DAYS),
        default=7,
        help="days of history (default 7)",
    )
    p.add_argument(
        "--jobs",
        type=whole_number(1, MAX_JOBS),
        default=max(1, min(os.cpu_count() or 1, 4)),
        help="processes writing in parallel (default: the CPU count, at most 4); "
        "the rows are the same for any number",
    )
    p.add_argument("--end", type=iso_time, help="end of the window, ISO-8601 (default now)")
    p.set_defaults(func=cmd_backfill)
