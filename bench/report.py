"""The markdown table of a run (bench/results/latest.md), every figure with its ratio to
the ceilings measured in the same run."""

from __future__ import annotations

TARGETS = {
    "device_1_worker": 25_000,
    "device_2_workers": 40_000,
    "gateway_1_worker": 100_000,
}


def _n(x: float | None) -> str:
    return "–" if x is None else f"{x:,.0f}"


def _ratio(x: float, ceiling: float | None) -> str:
    return f"{x / ceiling:.2f}" if ceiling else "–"


def _ok(met: bool) -> str:
    return "met" if met else "**missed**"


def render(results: dict) -> str:
    meta = results["meta"]
    lines = [
        f"# urbanwatch benchmarks{' (quick smoke run)' if meta['quick'] else ''}",
        "",
        f"{meta['date']} · commit {meta['commit']} · {meta['cpu']} · {meta['cores']} cores · "
        f"{meta['memory_gb']} GB · {meta['mosquitto']} · TimescaleDB: {meta['timescale']} · "
        f"whole run {meta.get('elapsed_s', '?')} s",
        "",
        "Broker, PostgreSQL, load generator and workers share the same cores. "
        "How each figure is measured: bench/README.md.",
        "",
    ]
    c = results.get("ceiling", {})
    broker = (c.get("broker_mosquitto_sub") or {}).get("msgs_per_s")
    paho = (c.get("broker_paho_count") or {}).get("msgs_per_s")
    copy = (c.get("copy") or {}).get("preencoded_rows_per_s")
    if c:
        lines += [
            "## 1. Ceilings (this run)",
            "",
            "| ceiling | per second |",
            "|---|---|",
            f"| broker → count-only `mosquitto_sub`, QoS 1 per-reading messages | {_n(broker)} |",
            f"| broker → count-only paho subscriber (stock paho), QoS 1 | {_n(paho)} |",
            f"| binary COPY into streetlight_readings, pre-encoded | {_n(copy)} rows |",
            f"| binary COPY, psycopg write_row, batches of 5000 | "
            f"{_n(c['copy']['write_row_batches_of_5000_rows_per_s'])} rows |",
            f"| load generator CPU | {c['broker_mosquitto_sub']['loadgen_cpu_s_per_million']}"
            " s per million messages |",
            "",
        ]
    ing = results.get("ingest", {})
    if ing:
        lines += [
            "## 2. Ingest, end to end (published → committed, ack after commit)",
            "",
            "| case | offered/s | committed readings/s | ÷ broker | ÷ COPY | target | "
            "lost | worker CPU s / M readings | broker CPU s / M |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, r in ing.items():
            if not isinstance(r, dict):
                continue
            target = TARGETS.get(name)
            lines.append(
                f"| {name.replace('_', ' ')} ({r['publish_seconds']} s) | "
                f"{_n(r['offered_readings_per_s'])} | {_n(r['readings_per_s'])} | "
                f"{_ratio(r['readings_per_s'], broker)} | {_ratio(r['readings_per_s'], copy)} | "
                f"≥ {_n(target)}: {_ok(r['readings_per_s'] >= (target or 0))} | {r['lost']} | "
                f"{r['worker_cpu_s_per_million']} | {r['broker_cpu_s_per_million']} |"
            )
        settings = ing.get("pg_settings")
        lines += [
            "",
            "PostgreSQL during each case (its configuration weighs on the gateway case: "
            f"{settings or 'settings not recorded'}): "
            + "; ".join(
                f"{name.replace('_', ' ')}: {r.get('pg_checkpoints', '?')} checkpoint(s), "
                f"{r.get('pg_backend_evictions_mb', '?')} MB written by backends evicting "
                f"pages, {r.get('pg_wal_bytes_per_reading', '?')} WAL bytes/reading, "
                f"backend CPU {r['pg_backend_cpu_s_per_million']} s/M"
                for name, r in ing.items()
                if isinstance(r, dict)
            )
            + ".",
        ]
        lines.append("")
    lat = results.get("latency", {})
    if lat:
        ms = lat["latency_ms"]
        lines += [
            "## 3. Latency, publish → commit, one worker",
            "",
            "| offered/s | committed/s | p50 ms | p90 ms | p99 ms | max ms | target p99 ≤ 500 ms |",
            "|---|---|---|---|---|---|---|",
            f"| {_n(lat['offered_readings_per_s'])} | {_n(lat['readings_per_s'])} | {ms['p50']} | "
            f"{ms['p90']} | {ms['p99']} | {ms['max']} | {_ok(ms['p99'] <= 500)} |",
            "",
        ]
    q = results.get("queries", {})
    if q:
        lines += _queries(q)
    city = results.get("city")
    if city:
        lines += _city(city)
    plan = results.get("plan")
    if plan:
        lines += _plan(plan)
    return "\n".join(lines) + "\n"


def _plan(p: dict) -> list[str]:
    """The plan's KPIs, targets and report (bench/plan.py), measured apart."""
    meta, s, r = p["meta"], p["snapshot"], p["report"]
    lines = [
        f"## 6. Plan KPIs, targets and report: {p['days']} days at {p['scale']:g} × city scale",
        "",
        f"From `python -m bench.plan` (bench/results/plan.json): {meta['commit']}, "
        f"plain storage. {p.get('note') or ''}",
        "",
        "| endpoint | URLs | requests | p50 ms | p99 ms | max ms | target p99 ≤ 200 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, e in p["endpoints"].items():
        lines.append(
            f"| {name} | {e.get('urls', '')} | {e['n']} | {e['p50_ms']} | {e['p99_ms']} | "
            f"{e['max_ms']} | {_ok(e['p99_ms'] <= p['targets']['endpoint_p99_ms'])} |"
        )
    # the value cache's misses: per input family changed ({family: {endpoint: figures}}), or
    # (older results) {endpoint: figures} after any ledger change
    after = p.get("endpoints_after_change", {})
    rows = [
        (f"{endpoint}, after a change to {family}", e)
        for family, endpoints in after.items()
        if "p99_ms" not in endpoints
        for endpoint, e in endpoints.items()
    ] + [(f"{name}, after a ledger change", e) for name, e in after.items() if "p99_ms" in e]
    for name, e in rows:
        lines.append(
            f"| {name} | {e.get('urls', '')} | {e['n']} | {e['p50_ms']} | "
            f"{e['p99_ms']} | {e['max_ms']} | "
            f"{_ok(e['p99_ms'] <= p['targets']['endpoint_p99_ms'])} |"
        )
    worst = max(r["text"]["max_s"], r["xlsx"]["max_s"])
    period = (
        f"{s['period_days']} days in {s['period_total_s']} s (per day p50 "
        f"{s['per_day_s']['p50']} s, max {s['per_day_s']['max']} s)"
        if "period_days" in s
        else "the period stored by an earlier run"
    )
    lines += [
        "",
        f"`urbanwatch report` (the whole city, process start included): text median "
        f"{r['text']['median_s']} s, xlsx median {r['xlsx']['median_s']} s, worst {worst} s "
        f"(target ≤ {p['targets']['report_s']:g} s: {_ok(worst <= p['targets']['report_s'])}). "
        f"KPI snapshot job: {period}; the daily run "
        f"({s['daily_job_days']} days: today and the late-data days) {s['daily_job_s']} s.",
        "",
    ]
    return lines


def _query_cells(r: dict) -> str:
    """device 30 d | district rollup month | target | device-hourly rollup by district."""
    qs = r["queries"]
    dev, roll = qs["device_30d"], qs["rollup_month_all_kinds"]
    district = qs["district_month_all_kinds"]
    return (
        f"{dev['p50_ms']} / {dev['p99_ms']} | {district['p50_ms']} / {district['p99_ms']} | "
        f"{_ok(district['p99_ms'] <= 200)} | {roll['p50_ms']} / {roll['p99_ms']}"
    )


def _city(c: dict) -> list[str]:
    """The full-city run (bench/city.py), measured apart: it takes over an hour."""
    meta = c["meta"]
    fleet = ", ".join(f"{n:,} {k}" for k, n in c["fleet"].items())
    lines = [
        f"## 4–5 at {'full city' if c['scale'] == 1 else format(c['scale'], 'g') + ' × city'} "
        f"scale ({fleet}; {c['readings_per_day']:,} readings a day)",
        "",
        "From `python -m bench.city` (bench/results/queries-city.json): "
        + "; ".join(
            f"{name} {m['date']} · commit {m['commit']} · {m.get('elapsed_s', '?')} s"
            for name in ("timescale", "plain")
            if (m := (c.get(name) or {}).get("meta", meta if c.get(name) else None))
        )
        + ". Each server filled alone "
        "day by day, settled as live operation would (rollups refreshed, TimescaleDB chunks "
        "older than 7 days compressed), then queried with nothing else running.",
        "",
        "| server | days | rows | backfill rows/s (jobs) | device 30 d p50 / p99 ms | "
        "district rollup month p50 / p99 ms (all kinds) | target rollup p99 ≤ 200 ms | "
        "device-hourly rollup by district p50 / p99 ms | bytes/reading | rollup GB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ("timescale", "plain"):
        r = c.get(name)
        if not r:
            lines.append(f"| {name} | not run ||||||||| ")
            continue
        size = r.get("storage") or r.get("storage_compressed") or {}
        label = "compressed " if "storage" not in r else ""
        lines.append(
            f"| {name} | {r['days']} | {_n(size.get('rows'))} | "
            f"{_n(r['backfill_rows_per_s'])} ({r['backfill_jobs']}) | {_query_cells(r)} | "
            f"{label}{size.get('bytes_per_reading', '–')} | "
            f"{size.get('rollup_bytes', 0) / 1e9:.1f} |"
        )
    note = c.get("note")
    lines += ["", note, ""] if note else [""]
    return lines


def _queries(q: dict) -> list[str]:
    fleet = ", ".join(f"{n:,} {k}" for k, n in q["fleet"].items())
    lines = [
        f"## 4–5. Queries and storage: {q['days']} days at {q['scale']:g} × city scale ({fleet})",
        "",
        "| server | rows | backfill rows/s | device 30 d p50 / p99 ms | "
        "district rollup month p50 / p99 ms (all kinds) | target rollup p99 ≤ 200 ms | "
        "device-hourly rollup by district p50 / p99 ms | bytes/reading | "
        "compressed bytes/reading |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ("plain", "timescale"):
        r = q.get(name)
        if not r:
            lines.append(f"| {name} | skipped (no TimescaleDB server given) ||||||||")
            continue
        compressed = r.get("storage_compressed", {}).get("bytes_per_reading", "–")
        lines.append(
            f"| {name} | {_n(r['storage']['rows'])} | {_n(r['backfill_rows_per_s'])} | "
            f"{_query_cells(r)} | {r['storage']['bytes_per_reading']} | {compressed} |"
        )
    lines += [
        "",
        "The district rollup (`<kind>_district_hourly`) reads one row per district and hour, "
        "whatever the number of devices; the device-hourly rollup grouped by district reads one "
        "row per device and hour and grows with the fleet (docs/scaling.md).",
        "",
    ]
    return lines
