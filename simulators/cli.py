"""`urbanwatch simulate fleet|run|backfill`: a realistic Anyang fleet, live or as history."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from simulators.backfill import backfill, backfill_parallel
from simulators.engine import Simulation, build_world
from simulators.fleet import Fleet, fleet_size, make_fleet, registry_rows, write_registry
from simulators.live import plan_clock, run_live, wall_ms
from simulators.publisher import Publisher
from simulators.scenario import SCENARIO_DIR, load_scenario
from simulators.sun import LOCAL
from simulators.truth import ground_truth, write_truth
from urbanwatch import db, registry
from urbanwatch.settings import Settings

logger = logging.getLogger(__name__)

OUT_DIR = Path(".demo")  # git-ignored
OPEN_RUN_HORIZON_MS = 7 * 86_400_000  # background faults are planned this far for open runs


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--seed", type=int, default=1, help="random seed: same seed, same fleet (default 1)"
    )
    p.add_argument(
        "--scale",
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
        help="where to write the ground-truth JSON "
        "(default .demo/truth-<command>-<scale>-<seed>.json)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _scenario_args(p: argparse.ArgumentParser) -> None:
    shipped = ", ".join(sorted(x.stem for x in SCENARIO_DIR.glob("*.yaml")))
    p.add_argument("--scenario", help=f"a scenario YAML file or a shipped name ({shipped})")
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
        "DOMAIN.md describes. See docs/simulators.md.",
    )
    ssub = sim.add_subparsers(dest="simulate_command", required=True, metavar="ACTION")

    p = ssub.add_parser(
        "fleet",
        help="generate a fleet registry file and import it",
        description="Write the fleet as CSV or GeoJSON (by the file suffix), "
        "import it into the registry, and write the fleet's ground truth "
        "(DMA leakage, waterlogging ledger).",
    )
    _common(p)
    p.add_argument(
        "--out", type=Path, help="registry file (default .demo/fleet-<scale>-<seed>.csv)"
    )
    p.set_defaults(func=cmd_fleet)

    p = ssub.add_parser(
        "run",
        help="publish live over MQTT",
        description="Publish readings live at QoS 1. With --speed > 1 simulated "
        "time runs faster but never passes the wall clock: the run replays a "
        "window ending now (docs/simulators.md). Ctrl-C stops cleanly.",
    )
    _common(p)
    _scenario_args(p)
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per wall second")
    p.add_argument("--duration", type=float, help="wall seconds to run (default: until Ctrl-C)")
    p.add_argument("--start", help="simulated start, ISO-8601 (default: see --speed)")
    p.add_argument(
        "--stagger",
        type=float,
        help="every device reports first within this many "
        "seconds (default: within its own interval)",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=0,
        help="gateway batches of this many readings "
        "(default 0: one message per reading on the device's own topic)",
    )
    p.add_argument("--rate-cap", type=float, help="at most this many readings per second")
    p.add_argument("--client-id", help="MQTT client id (default urbanwatch-sim-<pid>)")
    p.set_defaults(func=cmd_run)

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
    p.add_argument("--days", type=float, default=7, help="days of history (default 7)")
    p.add_argument(
        "--jobs",
        type=int,
        default=max(1, min(os.cpu_count() or 1, 4)),
        help="processes writing in parallel (default: the CPU count, at most 4); "
        "the rows are the same for any number",
    )
    p.add_argument("--end", help="end of the window, ISO-8601 (default now)")
    p.set_defaults(func=cmd_backfill)


def _fleet(args: argparse.Namespace) -> Fleet:
    size = fleet_size(args.scale)
    logger.info(
        "fleet seed %d scale %s: %d covers, %d lamps, %d waterlogging points, %d DMAs",
        args.seed,
        args.scale,
        size.covers,
        size.lamps,
        size.waterlog_points,
        size.dmas,
    )
    return make_fleet(args.seed, args.scale)


def _import(fleet: Fleet, settings: Settings, quiet: bool) -> bool:
    with db.connect(settings.database_url, autocommit=True) as conn:
        report = registry.import_rows(
            conn, registry_rows(fleet), total=len(fleet.devices), progress=not quiet
        )
    for where, reason in report.errors[:10]:
        print(f"registry: {where}: {reason}", file=sys.stderr)
    print(f"registry: {report.imported} device(s) upserted, {len(report.errors)} refused")
    return report.ok


def _truth_path(args: argparse.Namespace, command: str) -> Path:
    return args.truth or OUT_DIR / f"truth-{command}-{args.scale}-{args.seed}.json"


def _parse_time(text: str | None, default_ms: int) -> int:
    if not text:
        return default_ms
    dt = datetime.fromisoformat(text)
    return int((dt if dt.tzinfo else dt.replace(tzinfo=LOCAL)).timestamp() * 1000)


def cmd_fleet(args: argparse.Namespace, settings: Settings) -> int:
    fleet = _fleet(args)
    out = args.out or OUT_DIR / f"fleet-{args.scale}-{args.seed}.csv"
    write_registry(fleet, out)
    print(f"wrote {len(fleet.devices)} devices to {out}")
    write_truth(ground_truth(fleet), _truth_path(args, "fleet"))
    if not args.no_import and not _import(fleet, settings, args.quiet):
        return 1
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    fleet = _fleet(args)
    scenario = load_scenario(args.scenario) if args.scenario else None
    clock = plan_clock(args.speed, args.duration, _parse_time(args.start, 0) or None, wall_ms())
    end = clock.start_ms + int((args.duration or OPEN_RUN_HORIZON_MS / 1000) * 1000 * args.speed)
    world = build_world(fleet, clock.start_ms, end, scenario, not args.no_background)
    truth = _truth_path(args, "run")
    name = scenario.name if scenario else None
    write_truth(ground_truth(fleet, world, clock.start_ms, end, name), truth)
    print(f"ground truth: {truth}")
    if not args.no_import and not _import(fleet, settings, args.quiet):
        return 1
    sim = Simulation(fleet, world, clock.start_ms, stagger_s=args.stagger)
    publisher = Publisher(
        settings.mqtt_url,
        settings.mqtt_topic_prefix,
        client_id=args.client_id or f"urbanwatch-sim-{os.getpid()}",
        batch=args.batch,
        rate_cap=args.rate_cap,
    )
    publisher.connect()
    stop = threading.Event()
    try:
        run_live(
            sim, publisher, clock, duration_s=args.duration, stop=stop, progress=not args.quiet
        )
    except KeyboardInterrupt:
        print("\nstopping: flushing and waiting for the broker's acknowledgements", file=sys.stderr)
    finally:
        publisher.close()
    print(
        f"published {publisher.readings} readings in {publisher.messages} messages "
        f"({dict(sim.counts)}); {publisher.acked} acknowledged"
    )
    return 0


def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    fleet = _fleet(args)
    scenario = load_scenario(args.scenario) if args.scenario else None
    end = _parse_time(args.end, wall_ms())
    start = end - int(args.days * 86_400_000)
    world = build_world(fleet, start, end, scenario, not args.no_background)
    truth = _truth_path(args, "backfill")
    name = scenario.name if scenario else None
    write_truth(ground_truth(fleet, world, start, end, name), truth)
    print(f"ground truth: {truth}")
    if not args.no_import and not _import(fleet, settings, args.quiet):
        return 1
    if args.jobs > 1:
        counts = backfill_parallel(
            settings.database_url, fleet, world, start, end, jobs=args.jobs, progress=not args.quiet
        )
    else:
        sim = Simulation(fleet, world, start)
        with db.connect(settings.database_url, autocommit=True) as conn:
            counts = backfill(conn, sim, start, end, progress=not args.quiet)
    print(f"backfilled {sum(counts.values())} readings by COPY: {counts}")
    return 0
