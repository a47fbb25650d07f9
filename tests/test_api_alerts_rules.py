"""Rules and routes through the API (docs/api-alerts.md): read the set and a device's
effective rules, edit overrides, replace the set or the routing; a broken body is refused as
a whole with the field that is wrong and the stored set stays as it was."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator

import pytest

from tests.alerts_api_support import World, make_world, row
from urbanwatch.alerting import default_rules


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    yield from make_world(database_url)


def tilt(rules: list[dict]) -> dict:
    return next(r for r in rules if r["id"] == "MH_TILT")


def test_rules_effective_and_overrides(world: World):
    c, k = world.client, world.keys
    got = c.get("/rules", headers=k["viewer"]).json()
    assert got["version"] is None  # the shipped defaults, never loaded
    assert len(got["rules"]["rules"]) == len(default_rules().rules)

    eff = c.get("/rules/effective/MH-1", headers=k["viewer"]).json()
    assert eff["kind"] == "manhole" and tilt(eff["rules"])["params"]["tilt_deg"] == 10
    assert c.get("/rules/effective/NOPE", headers=k["viewer"]).status_code == 404

    overrides = [
        {"rule": "MH_TILT", "district": "wenfeng", "params": {"tilt_deg": 12}},
        {"rule": "MH_TILT", "device": "MH-1", "params": {"tilt_deg": 15}, "severity": "critical"},
    ]
    body = {"overrides": overrides, "note": "steep street"}
    assert c.put("/rules/overrides", json=body, headers=k["crew"]).status_code == 403
    put = c.put("/rules/overrides", json=body, headers=k["operator"])
    assert put.status_code == 200, put.text
    version = put.json()["version"]
    assert version is not None
    mine = tilt(c.get("/rules/effective/MH-1", headers=k["viewer"]).json()["rules"])
    assert (mine["params"]["tilt_deg"], mine["severity"]) == (15, "critical")
    other = tilt(c.get("/rules/effective/MH-2", headers=k["viewer"]).json()["rules"])
    assert (other["params"]["tilt_deg"], other["severity"]) == (10, "alarm")
    assert len(c.get("/rules/overrides", headers=k["viewer"]).json()) == 2
    assert row(world.url, "SELECT count(*) FROM audit_log WHERE action = 'alert_rules.load'")[0]

    bad = c.put("/rules/overrides", json={"overrides": [{"rule": "NO_SUCH", "kind": "manhole"}]},
                headers=k["operator"])  # fmt: skip
    assert bad.status_code == 422 and "NO_SUCH" in bad.text
    typed = c.put("/rules/overrides", json={"overrides": [
        {"rule": "MH_TILT", "device": "MH-1", "params": {"tilt_deg": "steep"}}]},
        headers=k["operator"])  # fmt: skip
    assert typed.status_code == 422 and "params.tilt_deg" in typed.text
    two = c.put("/rules/overrides", json={"overrides": [
        {"rule": "MH_TILT", "device": "MH-1", "kind": "manhole"}]}, headers=k["operator"])  # fmt: skip
    assert two.status_code == 422 and two.json()["detail"][0]["loc"][:3] == ["body", "overrides", 0]
    assert c.get("/rules", headers=k["viewer"]).json()["version"] == version  # kept


def test_replace_the_rule_set_whole_or_not_at_all(world: World):
    c, k = world.client, world.keys
    data = c.get("/rules", headers=k["viewer"]).json()["rules"]
    changed = copy.deepcopy(data)
    tilt(changed["rules"])["params"]["tilt_deg"] = 20
    changed["reopen_within_s"] = 600
    put = c.put("/rules", json=changed, headers=k["operator"])
    assert put.status_code == 200, put.text
    version = put.json()["version"]
    stored = c.get("/rules", headers=k["viewer"]).json()
    assert stored["version"] == version and stored["rules"]["reopen_within_s"] == 600
    assert tilt(stored["rules"]["rules"])["params"]["tilt_deg"] == 20

    broken = copy.deepcopy(changed)
    index = next(i for i, r in enumerate(broken["rules"]) if r["id"] == "MH_TILT")
    broken["rules"][index]["trigger"] = "tilt > params.tilt_deg"
    refused = c.put("/rules", json=broken, headers=k["operator"])
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "rules", index, "trigger"]
    assert "tilt" in refused.json()["detail"][0]["msg"]
    nan = copy.deepcopy(changed)
    tilt(nan["rules"])["params"]["tilt_deg"] = float("nan")
    refused = c.put("/rules", content=json.dumps(nan), headers={
        **k["operator"], "Content-Type": "application/json"})  # fmt: skip
    assert refused.status_code == 422, refused.text
    assert c.get("/rules", headers=k["viewer"]).json()["version"] == version
    assert c.put("/rules", json=changed, headers=k["viewer"]).status_code == 403


def test_routes_read_and_replace(world: World):
    c, k = world.client, world.keys
    got = c.get("/routes", headers=k["viewer"])
    assert got.status_code == 200
    routing = got.json()
    assert routing["crews"]["cgj-manhole"]["unit"] == "cgj"
    assert "line" not in routing["routes"][0]

    changed = copy.deepcopy(routing)
    changed["routes"].append({"kind": "manhole", "district": "linzhou", "unit": "zjj",
                              "crews": ["zjj-duty"]})  # fmt: skip
    assert c.put("/routes", json=changed, headers=k["crew"]).status_code == 403
    put = c.put("/routes", json=changed, headers=k["operator"])
    assert put.status_code == 200, put.text
    assert len(c.get("/routes", headers=k["viewer"]).json()["routes"]) == len(routing["routes"]) + 1
    # the unit an alert shows follows the routing
    from tests.alerts_api_support import open_alert

    alert_id = open_alert(world.url, "MH_TILT", "MH-2", district="linzhou")
    assert c.get(f"/alerts/{alert_id}", headers=k["viewer"]).json()["alert"]["unit"] == "zjj"

    broken = copy.deepcopy(changed)
    broken["crews"]["cgj-manhole"]["unit"] = "nowhere"
    refused = c.put("/routes", json=broken, headers=k["operator"])
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "crews", "cgj-manhole", "unit"]
    no_catch_all = copy.deepcopy(changed)
    no_catch_all["routes"] = no_catch_all["routes"][1:]
    refused = c.put("/routes", json=no_catch_all, headers=k["operator"])
    assert refused.status_code == 422 and "catch-all" in refused.text
    assert len(c.get("/routes", headers=k["viewer"]).json()["routes"]) == len(changed["routes"])
