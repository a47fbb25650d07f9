"""The plan API (/targets, /kpis, /ledgers, /feed) through the real app, database and keys:
viewers read, operators write; bad bodies get a 422 naming the field, never a 5xx."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date

import openpyxl
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from api.app import create_app
from tests.identity_support import api_settings, make_key
from urbanwatch import audit
from urbanwatch.identity.roles import Role
from urbanwatch.plan import targets

COVERS_CSV = "井盖编号,所属区县,应装防坠设施,防坠设施安装日期\nMH-1,文峰区,是,2021-05-01\nMH-2,北关区,是,\nMH-3,nowhere,否,\n"


@pytest.fixture
def database_url(storage_database_url: str) -> str:
    """Both storages: the API serves KPIs and targets from a TimescaleDB database too."""
    return storage_database_url


@pytest.fixture
def api(database_url: str, conn) -> Iterator[tuple[TestClient, dict[str, str], dict[str, str]]]:
    targets.seed_targets(conn, audit.Actor("test:setup"))
    viewer = {"X-API-Key": make_key(database_url, Role.viewer)}
    operator = {"X-API-Key": make_key(database_url, Role.operator)}
    with TestClient(create_app(api_settings(database_url))) as client:
        yield client, viewer, operator


def upload(client, headers, name, text, filename="covers.csv"):
    return client.post(f"/ledgers/{name}/import", headers=headers,
                       files={"file": (filename, text.encode() if isinstance(text, str) else text)})  # fmt: skip


def test_ledger_import_export_and_rows(api):
    client, viewer, operator = api
    assert upload(client, viewer, "manhole_covers", COVERS_CSV).status_code == 403
    got = upload(client, operator, "manhole_covers", COVERS_CSV)
    assert got.status_code == 200, got.text
    body = got.json()
    assert (body["created"], body["updated"], body["unchanged"]) == (2, 0, 0)
    assert body["errors"] == [
        {"line": 4, "field": "district", "message": "unknown district 'nowhere'"}
    ]
    again = upload(client, operator, "manhole_covers", COVERS_CSV).json()
    assert (again["created"], again["unchanged"]) == (0, 2)

    rows = client.get("/ledgers/manhole_covers/rows", headers=viewer).json()
    assert [r["cover_id"] for r in rows] == ["MH-1", "MH-2"]
    assert rows[0]["anti_fall_installed_on"] == "2021-05-01"
    exported = client.get("/ledgers/manhole_covers/export?format=xlsx", headers=viewer)
    assert exported.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(exported.content)).worksheets[0]
    assert [c.value for c in sheet["A"]] == ["井盖编号", "MH-1", "MH-2"]
    reimport = upload(client, operator, "manhole_covers", exported.content, "covers.xlsx").json()
    assert (reimport["unchanged"], reimport["errors"]) == (2, [])
    template = client.get("/ledgers/hidden_dangers/template?format=csv", headers=viewer)
    assert template.content.decode("utf-8-sig").startswith("隐患编号,所属区县,隐患类别")
    assert upload(client, operator, "nope", COVERS_CSV).status_code == 404
    bad_file = upload(client, operator, "manhole_covers", "colour\nred\n")
    assert bad_file.status_code == 422 and bad_file.json()["detail"][0]["loc"] == ["body", "file"]

    put = client.put("/ledgers/manhole_covers/rows", headers=operator,
                     json={"cover_id": "MH-2", "district": "beiguan", "anti_fall_installed_on": "2021/7/1"})  # fmt: skip
    assert put.status_code == 200 and put.json()["outcome"] == "updated"
    assert put.json()["row"]["anti_fall_installed_on"] == "2021-07-01"
    bad = client.put("/ledgers/manhole_defects/rows", headers=operator,
                     json={"cover_id": "MH-9", "defect_type": "BROKEN", "discovered_on": "2021-01-01", "source": "inspection"})  # fmt: skip
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "cover_id"]
    nan = client.put("/ledgers/manhole_covers/rows", headers={**operator, "content-type": "application/json"},
                     content=b'{"cover_id": "MH-1", "district": "wenfeng", "lat": NaN}')  # fmt: skip
    assert nan.status_code == 422 and nan.json()["detail"][0]["loc"] == ["body", "lat"]
    extra = client.put("/ledgers/manhole_covers/rows", headers=operator,
                       json={"cover_id": "MH-1", "district": "wenfeng", "colour": "red"})  # fmt: skip
    assert extra.status_code == 422 and extra.json()["detail"][0]["loc"] == ["body", "colour"]
    gone = client.delete("/ledgers/manhole_covers/rows?cover_id=MH-2", headers=operator)
    assert gone.status_code == 200 and gone.json()["deleted"]["cover_id"] == "MH-2"
    assert (
        client.delete("/ledgers/manhole_covers/rows?cover_id=MH-2", headers=operator).status_code
        == 404
    )


def test_kpis_targets_and_feed(api):
    client, viewer, operator = api
    upload(client, operator, "manhole_covers", COVERS_CSV)
    now = client.get("/kpis/manhole.anti_fall_install_rate?day=2021-12-31", headers=viewer).json()
    assert (now["value"], now["numerator"], now["denominator"]) == (50.0, 1, 2)
    empty = client.get("/kpis/hidden.rectification_rate", headers=viewer).json()
    assert empty["value"] is None  # no data, not 0 %
    items = client.get(
        "/kpis/manhole.anti_fall_install_rate/items?day=2021-12-31", headers=viewer
    ).json()
    assert [i["cover_id"] for i in items] == ["MH-2"]
    assert client.get("/kpis/nope", headers=viewer).status_code == 404
    assert client.get("/kpis/manhole.intact_rate?scope=mars", headers=viewer).status_code == 422
    catalog = client.get("/kpis/catalog", headers=viewer).json()
    assert "manhole.defect_remediation_rate_baseline" in {k["key"] for k in catalog}

    listed = client.get("/targets?as_of=2021-12-31", headers=viewer).json()
    t2b = next(t for t in listed if t["id"] == "T2b")
    assert t2b["assessment"]["value"] == 50.0 and t2b["clause_zh"].startswith(
        "做好窨井盖安全网安装"
    )
    detail = client.get("/targets/T2b?as_of=2021-12-31", headers=viewer).json()
    assert detail["worst_districts"] == [{"code": "beiguan", "name_zh": "北关区", "value": 0.0}]
    assert detail["history"][0]["action"] == "create"
    assert (
        client.patch("/targets/T2b", headers=viewer, json={"target_value": 90}).status_code == 403
    )
    patched = client.patch("/targets/T2b", headers=operator, json={"target_value": 90})
    assert patched.status_code == 200 and patched.json()["target_value"] == 90
    refused = client.patch("/targets/T2b", headers=operator, json={"scope": "district"})
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "district"]
    assert client.patch("/targets/T99", headers=operator, json={}).status_code == 404

    feed = client.get("/feed?as_of=2021-12-31", headers=viewer).json()
    assert feed["schema"] == "urbanwatch.feed/1" and len(feed["targets"]) == 14
    assert {"id", "status", "value", "lead_units", "clause_zh"} <= set(feed["targets"][0])
    assert feed["open_alerts"] == []


cell = st.one_of(
    st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30), st.dates(date(1, 1, 1), date(9999, 12, 31)).map(str),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)  # fmt: skip
# Mostly plausible rows (a key, a known district, fitting values), any value anywhere.
KEY = st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=20).filter(
    str.strip
)
PLAUSIBLE = {
    "road": st.text(max_size=20),
    "smart_monitor_id": st.text(max_size=10),
    "in_core_area": st.sampled_from(["是", "否", "true", "", True, False, 1]),
    "anti_fall_required": st.sampled_from(["是", "否", "0", None, True]),
    "installed_on": st.dates(date(1900, 1, 1), date(2100, 1, 1)).map(str),
    "anti_fall_installed_on": st.dates(date(2000, 1, 1), date(2030, 1, 1)).map(
        lambda d: f"{d.year}/{d.month}/{d.day}"
    ),
    "lat": st.floats(-90, 90),
    "lon": st.floats(-180, 180).map(str),
    "load_class": st.sampled_from(["A15", "d400", "", None]),
}
bodies = st.fixed_dictionaries(
    {
        "cover_id": st.one_of(*[KEY] * 4, cell),
        "district": st.one_of(*[st.sampled_from(["wenfeng", "文峰区", "滑县"])] * 4, st.just("nowhere"), cell),
    },
    optional={name: st.one_of(*[good] * 6, cell) for name, good in PLAUSIBLE.items()},
)  # fmt: skip


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies)
@example(body={"cover_id": " MH-例 ", "district": "文峰区", "lat": 36.1, "in_core_area": "是"})
@example(body={"cover_id": 0.0, "district": "wenfeng"})  # stored as '0' (found by this test)
def test_any_row_body_is_stored_or_refused_by_field_never_a_5xx(api, body):
    client, viewer, operator = api
    got = client.put("/ledgers/manhole_covers/rows", headers=operator, json=body)
    assert got.status_code in (200, 422), got.text
    if got.status_code == 422:
        event(f"refused {got.json()['detail'][0]['loc'][1]}")
        loc = got.json()["detail"][0]["loc"]
        assert loc[0] == "body" and (loc[1] in body or loc[1] in ("cover_id", "district")), (
            loc,
            body,
        )
        return
    event("stored")
    stored = got.json()["row"]
    rows = client.get("/ledgers/manhole_covers/rows", headers=viewer).json()
    sent = body["cover_id"]
    if isinstance(sent, float) and sent.is_integer():
        sent = int(sent)  # a whole number is the id it spells, as in Excel (ledgers/base.py)
    assert stored in rows and stored["cover_id"] == str(sent).strip()
