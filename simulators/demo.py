"""`make demo`'s clock and its first minute (scripts/demo.sh, docs/simulators.md "make demo").

The demo's five first alerts need more simulated time than a minute: the circuit's supply
loss holds 2 min (SL_SUPPLY_LOSS) and the burst needs two inlet samples over the DMA's
profile (WS_FLOW_ANOMALY). So the demo's live run replays its first `PREROLL_S` simulated
seconds at `SPEED`x, then runs in real time; and it runs in the small hours (the lamps'
expected-on window, the DMAs' quiet night flow), behind the wall clock at other hours, so
that a circuit's supply loss is a fault at all and a burst stands out from the profile.
The rules, detectors and engine are the shipped ones.

`python -m simulators.demo clock` prints the live run's `--start`, `--behind`, `--speed` and
the last alert id;
`python -m simulators.demo watch` prints each of the five alerts as it appears, with its id,
state and where to see it, and `... status` lists them once.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from simulators.live import wall_ms
from simulators.plan import local_iso
from simulators.sun import LOCAL_OFFSET_MS
from urbanwatch import db
from urbanwatch.settings import Settings

SPEED = 8  # the first PREROLL_S simulated seconds replay this much faster than real time
PREROLL_S = 240  # simulated seconds: every first-minute alert is known by +3 min
# The simulated start falls between 01:00 and 03:30 local: the lamps are on all year until
# at least 04:30 (June's sunrise at Anyang is after 05:00), and the DMAs draw their flat
# minimum night flow, so a burst stands out against the hourly profile from its first sample
# (in the morning ramp the hour's mean is above its first minutes and hides 25 m³/h).
HOUR_MS = 3_600_000
QUIET_FROM_MS, QUIET_TO_MS = 1 * HOUR_MS, 3 * HOUR_MS + 30 * 60_000  # local time of day
NIGHT_S = 3600  # the lamps stay expected-on at least this long from the simulated start
WITHIN_S = 60  # wall seconds after the simulator starts


@dataclass(frozen=True)
class Expected:
    name: str
    rule_id: str
    subject: str | None  # None: any (the storm incident is named after its start)
    what: str


FIRST_MINUTE = (
    Expected("cover", "MH_OPEN", "MH-000012", "井盖打开 cover MH-000012 open (and tilted)"),
    Expected("gas", "MH_GAS_L2", "MH-000030", "可燃气体二级 gas at MH-000030, 55 % LEL"),
    Expected("storm", "STORM_INCIDENT", None, "暴雨内涝事件 storm incident, floods grouped"),
    Expected("circuit", "SL_CIRCUIT_SUPPLY_LOSS", "CIR-0003", "回路失电 circuit CIR-0003"),
    Expected("burst", "WS_SUSPECTED_BURST", "DMA-02", "疑似爆管 suspected burst in DMA-02"),
)


def wall_after(sim_s: float) -> float:
    """Wall seconds after the simulator's start at which simulated second `sim_s` is
    published (the clock `clock` plans: SPEED x for PREROLL_S, then real time)."""
    if sim_s <= PREROLL_S:
        return sim_s / SPEED
    return PREROLL_S / SPEED + (sim_s - PREROLL_S)


def quiet_start(latest_ms: int) -> int:
    """The latest whole second ≤ `latest_ms` whose local time of day is in
    [QUIET_FROM, QUIET_TO): `latest_ms` itself if it is, else the last 03:29:59."""
    latest_ms = latest_ms // 1000 * 1000
    of_day = (latest_ms + LOCAL_OFFSET_MS) % (24 * HOUR_MS)
    if QUIET_FROM_MS <= of_day < QUIET_TO_MS:
        return latest_ms
    back = (of_day - QUIET_TO_MS) % (24 * HOUR_MS) + 1000
    return latest_ms - back


def plan(now_ms: int) -> tuple[int, int]:
    """(--start in epoch ms, --behind in whole seconds) for a live run starting now: its
    first PREROLL_S simulated seconds replay at SPEED x and end at most at now."""
    lead_ms = PREROLL_S * 1000
    start = quiet_start(now_ms - lead_ms)
    return start, (now_ms - lead_ms - start) // 1000


def known_at(row: dict[str, Any]) -> datetime:
    """When the engine knew: a group alert's detail carries it; a rule's opens at once."""
    at = row["detail"].get("at") if isinstance(row["detail"], dict) else None
    return datetime.fromisoformat(at) if at else row["opened_at"]


def last_id(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT coalesce(max(id), 0) FROM alerts").fetchone()
    conn.commit()
    return int(row[0]) if row else 0


def find(
    conn: psycopg.Connection, after_id: int = 0, since: datetime | None = None
) -> dict[str, dict[str, Any]]:
    """The newest alert of each of the five raised after alert `after_id`, or updated since
    `since` (a database kept from an earlier demo may still hold it open), with how many
    alerts it holds back."""
    found: dict[str, dict[str, Any]] = {}
    for e in FIRST_MINUTE:
        row = conn.execute(
            """SELECT a.id, a.status, a.severity, a.opened_at, a.detail, a.subject,
                      (SELECT count(*) FROM alerts c WHERE c.parent_id = a.id AND c.suppressed)
               FROM alerts a WHERE a.rule_id = %s AND (%s::text IS NULL OR a.subject = %s)
                 AND (a.id > %s OR a.updated_at >= %s)
               ORDER BY a.id DESC LIMIT 1""",
            (e.rule_id, e.subject, e.subject, after_id, since or datetime.max.replace(tzinfo=UTC)),
        ).fetchone()
        if row:
            keys = ("id", "status", "severity", "opened_at", "detail", "subject", "held_back")
            found[e.name] = dict(zip(keys, row, strict=True))
    conn.commit()
    return found


def delivered(webhook_log: Path | None) -> set[int]:
    """Alert ids the demo's webhook receiver has logged."""
    if webhook_log is None or not webhook_log.exists():
        return set()
    ids = set()
    for line in webhook_log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            ids.add(int(json.loads(line)["payload"]["alert"]["id"]))
        except (ValueError, KeyError, TypeError):
            continue
    return ids


def describe(e: Expected, row: dict[str, Any], api: str, hooks: set[int]) -> str:
    held = f", {row['held_back']} alert(s) inhibited under it" if row["held_back"] else ""
    sent = "delivered to the webhook" if row["id"] in hooks else "webhook: not yet delivered"
    return (
        f"{e.what}: alert #{row['id']} {e.rule_id} "
        f"{row['subject']} {row['severity']} {row['status']}{held}; {sent}\n"
        f"          {api}/alerts/{row['id']}"
    )


def _watch(args: argparse.Namespace, conn: psycopg.Connection) -> int:
    began, since = time.monotonic(), datetime.now(UTC)
    shown: set[str] = set()
    while True:
        elapsed = time.monotonic() - began
        found = find(conn, args.after_id, since)
        hooks = delivered(args.webhook_log)
        for e in FIRST_MINUTE:
            if e.name in found and e.name not in shown:
                shown.add(e.name)
                # on a line of its own: the simulator's progress bar shares the terminal
                print(f"\ndemo: +{elapsed:3.0f} s  {describe(e, found[e.name], args.api, hooks)}")
                sys.stdout.flush()
        if len(shown) == len(FIRST_MINUTE):
            print(f"\ndemo: all five first-minute alerts are in, {elapsed:.0f} s after the start")
            return 0
        if elapsed > args.timeout:
            missing = ", ".join(e.name for e in FIRST_MINUTE if e.name not in shown)
            print(f"\ndemo: not raised within {args.timeout:g} s: {missing} (see .demo/alerts.log)")
            return 1
        time.sleep(1.0)


def _status(args: argparse.Namespace, conn: psycopg.Connection) -> int:
    found = find(conn, args.after_id)
    hooks = delivered(args.webhook_log)
    for e in FIRST_MINUTE:
        if e.name in found:
            print(f"demo: {describe(e, found[e.name], args.api, hooks)}")
        else:
            print(f"demo: {e.what}: no alert")
    return 0 if len(found) == len(FIRST_MINUTE) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.demo",
        description="make demo 的时钟与首分钟告警 — make demo's clock and its first-minute alerts "
        "(scripts/demo.sh)",
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub.add_parser(
        "clock",
        help="print the live run's --start (ISO), --behind (seconds), --speed, and the last "
        "alert id so far",
    )
    for name, text in (
        ("watch", "print each of the five first-minute alerts as it appears"),
        ("status", "list the five first-minute alerts once"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--api", default="http://127.0.0.1:8000", help="the API's base URL")
        p.add_argument("--webhook-log", type=Path, help="the demo receiver's JSON-lines log")
        p.add_argument("--timeout", type=float, default=120.0, help="watch: give up after this")
        p.add_argument(
            "--after-id",
            type=int,
            default=0,
            help="only alerts after this id (`clock` prints the last one)",
        )
    args = parser.parse_args(argv)
    url = Settings().database_url
    try:
        conn = db.connect(url)
    except psycopg.OperationalError as exc:
        reason = str(exc).splitlines()[0]
        print(f"demo: cannot reach the database {db.describe(url)}: {reason}", file=sys.stderr)
        return 2
    with conn:
        if args.action == "clock":
            start, behind = plan(wall_ms())
            print(local_iso(start), behind, SPEED, last_id(conn))
            return 0
        return _watch(args, conn) if args.action == "watch" else _status(args, conn)


if __name__ == "__main__":
    sys.exit(main())
