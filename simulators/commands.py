"""What `urbanwatch simulate fleet|run|backfill` do, once argparse has checked the values
(simulators/cli.py). The window is checked against the wall clock before any work
(simulators/plan.py), and a wrong DATABASE_URL, broker or output directory fails before
the fleet is generated. `--dry-run` prints the plan and stops there.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from simulators.backfill import backfill, backfill_parallel
from simulators.engine import Simulation, build_world
from simulators.fleet import Fleet, fleet_size, make_fleet, registry_rows, write_registry
from simulators.live import SimClock, run_live, wall_ms
from simulators.plan import (
    backfill_window,
    describe_fleet,
    describe_scenario,
    describe_window,
    run_window,
)
from simulators.publisher import Publisher
from simulators.truth import ground_truth, write_truth
from simulators.world import World
from urbanwatch import db, registry
from urbanwatch.errors import RuntimeProblem, UsageError
from urbanwatch.settings import Settings, state_dir

logger = logging.getLogger(__name__)


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


def _world(fleet: Fleet, start_ms: int, end_ms: int, args: argparse.Namespace) -> World:
    try:
        return build_world(fleet, start_ms, end_ms, args.scenario, not args.no_background)
    except ValueError as exc:
        if args.scenario is None:
            raise
        # the scenario names a device, circuit or DMA that this fleet does not have
        raise UsageError(f"--scenario {args.scenario.name}: {exc}") from exc


def _import(fleet: Fleet, settings: Settings, quiet: bool) -> bool:
    with db.connect(settings.database_url, autocommit=True) as conn:
        report = registry.import_rows(
            conn, registry_rows(fleet), total=len(fleet.devices), progress=not quiet
        )
    for where, reason in report.errors[:10]:
        print(f"registry: {where}: {reason}", file=sys.stderr)
    print(f"registry: {report.imported} device(s) upserted, {len(report.errors)} refused")
    return report.ok


def _check_database(settings: Settings) -> None:
    """Connect once now, so that a wrong DATABASE_URL fails before the slow part."""
    db.connect(settings.database_url).close()


def _output(path: Path | None, settings: Settings, name: str) -> tuple[Path, str]:
    """Where a file goes, and the hint for when it cannot be written there."""
    if path is not None:
        return path, ""
    return state_dir(settings) / name, " (set URBANWATCH_STATE_DIR to a writable directory)"


def _prepare(path: Path, hint: str) -> Path:
    """Create `path`'s directory now, so that an unwritable one fails before the slow part."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RuntimeProblem(f"cannot create {path.parent}: {_reason(exc)}{hint}") from exc
    if not os.access(path.parent, os.W_OK):
        raise RuntimeProblem(f"cannot write in {path.parent}: permission denied{hint}")
    return path


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()


def _truth(args: argparse.Namespace, settings: Settings, command: str) -> tuple[Path, str]:
    return _output(args.truth, settings, f"truth-{command}-{args.scale}-{args.seed}.json")


def _print_plan(*lines: str) -> None:
    print("\n".join(lines))
    print("dry run: nothing was generated, written, imported or published")


def _describe_import(args: argparse.Namespace, settings: Settings) -> str:
    if args.no_import:
        return "registry: not imported (--no-import)"
    return f"registry: upsert the fleet into {db.describe(settings.database_url)}"


def cmd_fleet(args: argparse.Namespace, settings: Settings) -> int:
    truth, truth_hint = _truth(args, settings, "fleet")
    out, out_hint = _output(args.out, settings, f"fleet-{args.scale}-{args.seed}.csv")
    if args.dry_run:
        _print_plan(
            describe_fleet(args.seed, args.scale),
            f"registry file: {out}",
            f"ground truth: {truth}",
            _describe_import(args, settings),
        )
        return 0
    _prepare(out, out_hint)
    _prepare(truth, truth_hint)
    if not args.no_import:
        _check_database(settings)
    fleet = _fleet(args)
    write_registry(fleet, out)
    print(f"wrote {len(fleet.devices)} devices to {out}")
    write_truth(ground_truth(fleet), truth)
    if not args.no_import and not _import(fleet, settings, args.quiet):
        return 1
    return 0


def _describe_publishing(args: argparse.Namespace, settings: Settings) -> str:
    how = f"gateway batches of {args.batch}" if args.batch else "one message per reading"
    cap = f", at most {args.rate_cap:g} readings/s" if args.rate_cap else ""
    return f"publish: {settings.mqtt_url} under {settings.mqtt_topic_prefix}/, {how}{cap}"


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    clock, end = run_window(args.start, args.speed, args.duration, wall_ms(), args.behind)
    truth, hint = _truth(args, settings, "run")
    if args.dry_run:
        length = f"for {args.duration:g} s" if args.duration else "until Ctrl-C"
        _print_plan(
            describe_fleet(args.seed, args.scale),
            f"{describe_window(clock.start_ms, end)} at {args.speed:g}x speed, {length}"
            + (f", {args.behind} s behind the wall clock" if args.behind else ""),
            describe_scenario(args.scenario, not args.no_background),
            _describe_import(args, settings),
            f"ground truth: {truth}",
            _describe_publishing(args, settings),
        )
        return 0
    _prepare(truth, hint)
    if not args.no_import:
        _check_database(settings)
    publisher = _connected_publisher(args, settings)
    try:
        fleet = _fleet(args)
        world = _world(fleet, clock.start_ms, end, args)
        name = args.scenario.name if args.scenario else None
        write_truth(ground_truth(fleet, world, clock.start_ms, end, name), truth)
        print(f"ground truth: {truth}")
        if not args.no_import and not _import(fleet, settings, args.quiet):
            return 1
        sim = Simulation(fleet, world, clock.start_ms, stagger_s=args.stagger)
        _publish_live(sim, publisher, clock, args)
    finally:
        publisher.close()
    print(
        f"published {publisher.readings} readings in {publisher.messages} messages "
        f"({dict(sim.counts)}); {publisher.acked} acknowledged"
    )
    return 0


def _publish_live(
    sim: Simulation, publisher: Publisher, clock: SimClock, args: argparse.Namespace
) -> None:
    """Publish until the run's end; Ctrl-C is how an open run stops, so it is no error."""
    try:
        run_live(sim, publisher, clock, duration_s=args.duration, progress=not args.quiet)
    except KeyboardInterrupt:
        print("\nstopping: flushing and waiting for the broker's acknowledgements", file=sys.stderr)


def _connected_publisher(args: argparse.Namespace, settings: Settings) -> Publisher:
    publisher = Publisher(
        settings.mqtt_url,
        settings.mqtt_topic_prefix,
        client_id=args.client_id or f"urbanwatch-sim-{os.getpid()}",
        batch=args.batch,
        rate_cap=args.rate_cap,
        username=settings.mqtt_username,
        password=settings.mqtt_password.get_secret_value() if settings.mqtt_password else None,
    )
    try:  # now, so that a wrong MQTT_URL fails before the slow part
        publisher.connect()
    except OSError as exc:  # refused, unknown host, or no CONNACK in time
        raise RuntimeProblem(
            f"cannot reach the MQTT broker at {settings.mqtt_url}: {_reason(exc)}"
        ) from exc
    return publisher


def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    start, end = backfill_window(args.end, args.days, wall_ms())
    truth, hint = _truth(args, settings, "backfill")
    if args.dry_run:
        _print_plan(
            describe_fleet(args.seed, args.scale),
            describe_window(start, end),
            describe_scenario(args.scenario, not args.no_background),
            _describe_import(args, settings),
            f"ground truth: {truth}",
            f"readings: COPY into {db.describe(settings.database_url)} by {args.jobs} job(s)",
        )
        return 0
    _prepare(truth, hint)
    _check_database(settings)
    fleet = _fleet(args)
    world = _world(fleet, start, end, args)
    name = args.scenario.name if args.scenario else None
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
