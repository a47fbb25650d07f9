"""bench/report.py renders latest.md from the committed results: a result file whose shape
changed (bench.plan's after-change figures became per input family) must not crash
`python -m bench.run` after it has measured everything."""

from __future__ import annotations

import json
from pathlib import Path

from bench import report

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results"


def committed(part: str) -> dict:
    return json.loads((RESULTS / f"{part}.json").read_text())


def test_latest_renders_from_the_committed_results():
    meta = {**committed("ingest")["meta"], "quick": False, "timescale": "skipped: test"}
    results: dict = {"meta": meta}
    for part in ("ceiling", "ingest", "latency", "queries"):
        results[part] = committed(part)[part]
    results["city"] = committed("queries-city")
    results["plan"] = committed("plan")
    markdown = report.render(results)
    after = results["plan"]["endpoints_after_change"]
    assert after, "plan.json has no after-change figures"
    # every endpoint measured after a change has its row, with its p99
    for family, endpoints in after.items():
        if "p99_ms" in endpoints:  # an older result: {endpoint: figures}
            labelled = [(f"{family}, after a ledger change", endpoints)]
        else:
            labelled = [(f"{name}, after a change to {family}", e) for name, e in endpoints.items()]
        for label, e in labelled:
            (row,) = [line for line in markdown.splitlines() if line.startswith(f"| {label} |")]
            assert f"| {e['p99_ms']} |" in row
    assert "## 6. Plan KPIs" in markdown
