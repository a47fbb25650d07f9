"""`urbanwatch migrate` seeds the plan's targets T1-T10 (the same data as `targets load`):
on a fresh database all of them; on every later run only the missing ones, so an edit made
through the CLI or the API is kept and the history gains no rows."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from urbanwatch import audit
from urbanwatch.plan import targets
from urbanwatch.queries import targets as queries

SHIPPED = {t.id: t for t in targets.load_seed()}


def cli(database_url: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "urbanwatch.cli", *argv],
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )


def history_rows(database_url: str) -> list[tuple[str, str]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT target_id, action FROM plan_target_history ORDER BY id"
        ).fetchall()


def stored(database_url: str) -> dict[str, targets.Target]:
    with psycopg.connect(database_url) as conn:
        return {t.id: t for t in queries.list_targets(conn)}


def test_migrate_seeds_the_targets_keeps_edits_and_adds_no_history(empty_database):
    ran = cli(empty_database, "migrate")
    assert ran.returncode == 0, ran.stderr
    assert f"seeded {len(SHIPPED)} plan target(s)" in ran.stdout
    assert stored(empty_database) == SHIPPED
    assert sorted(history_rows(empty_database)) == sorted((t, "create") for t in SHIPPED)

    ran = cli(empty_database, "targets", "set", "T3", "target_value=80", "deadline=2024-06-30")
    assert ran.returncode == 0, ran.stderr
    before = history_rows(empty_database)
    assert before[-1] == ("T3", "update")

    for _ in range(2):  # a re-run, and another: nothing overwritten, nothing duplicated
        ran = cli(empty_database, "migrate")
        assert ran.returncode == 0, ran.stderr
        assert "seeded" not in ran.stdout
    after = stored(empty_database)
    assert (after["T3"].target_value, str(after["T3"].deadline)) == (80, "2024-06-30")
    assert {k: v for k, v in after.items() if k != "T3"} == {
        k: v for k, v in SHIPPED.items() if k != "T3"
    }
    assert history_rows(empty_database) == before

    ran = cli(empty_database, "targets", "load")  # still works beside migrate: nothing to add
    assert ran.returncode == 0, ran.stderr
    assert "targets: 0 created, 0 replaced" in ran.stdout
    assert history_rows(empty_database) == before


def test_migrate_puts_back_only_a_missing_target(empty_database):
    assert cli(empty_database, "migrate").returncode == 0
    with psycopg.connect(empty_database) as conn:  # a target lost (there is no delete command)
        conn.execute("DELETE FROM plan_target_history WHERE target_id = 'T7'")
        conn.execute("DELETE FROM plan_targets WHERE id = 'T7'")
    ran = cli(empty_database, "migrate")
    assert ran.returncode == 0, ran.stderr
    assert "seeded 1 plan target(s)" in ran.stdout
    assert stored(empty_database) == SHIPPED
    assert len(history_rows(empty_database)) == len(SHIPPED)


EDITS = st.one_of(
    st.tuples(st.just("target_value"), st.floats(-1e6, 1e6, allow_nan=False).map(str)),
    st.tuples(
        st.just("note"),
        st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1).filter(
            lambda s: s.strip() not in ("", "null", "none", "None", "NULL")
        ),
    ),
    st.tuples(st.just("deadline"), st.dates().map(str)),
    st.tuples(st.just("lead_units"), st.sampled_from(["市城市管理局", "市水利局,市应急管理局"])),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(target_id=st.sampled_from(sorted(SHIPPED)), edit=EDITS)
def test_any_edit_survives_the_seed_that_migrate_runs(database_url, target_id, edit):
    """The seed migrate runs (seed_targets without --replace) against any edit of any target."""
    actor = audit.Actor("test:edit")
    with psycopg.connect(database_url) as conn:
        targets.seed_targets(conn, actor)
        try:
            _, edited = targets.edit_target(
                conn, target_id, targets.parse_assignments(["=".join(edit)]), actor
            )
        except ValueError:  # an edit the model refuses (e.g. a value on a target without one)
            edited = queries.get_target(conn, target_id)
        rows = conn.execute("SELECT count(*) FROM plan_target_history").fetchone()
        assert targets.seed_targets(conn, actor) == (0, 0)
        assert queries.get_target(conn, target_id) == edited
        assert conn.execute("SELECT count(*) FROM plan_target_history").fetchone() == rows
