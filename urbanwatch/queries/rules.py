"""Alert rules in the database (migration 011): store a validated rule set as a whole,
read it back, and its version (the engine reloads when it changes)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from urbanwatch import audit
from urbanwatch.alerting.model import RuleSet

DELETE_RULES = "DELETE FROM alert_rules"
DELETE_OVERRIDES = "DELETE FROM alert_rule_overrides"
INSERT_RULE = """INSERT INTO alert_rules (rule_id, kind, position, definition)
                 VALUES (%s, %s, %s, %s)"""
INSERT_OVERRIDE = """INSERT INTO alert_rule_overrides
                     (rule_id, kind, district, device_id, definition) VALUES (%s, %s, %s, %s, %s)"""
INSERT_SET = """INSERT INTO alert_rule_sets (settings, loaded_by, note) VALUES (%s, %s, %s)
                RETURNING version"""
CURRENT_VERSION = "SELECT max(version) FROM alert_rule_sets"
SELECT_SETTINGS = "SELECT settings FROM alert_rule_sets ORDER BY version DESC LIMIT 1"
SELECT_RULES = "SELECT definition FROM alert_rules ORDER BY position"
SELECT_OVERRIDES = "SELECT definition FROM alert_rule_overrides ORDER BY id"
NOTIFY = "SELECT pg_notify('alert_rules', %s::text)"


def store_rule_set(
    conn: psycopg.Connection, rules: RuleSet, actor: audit.Actor, note: str | None = None
) -> int:
    """Replace the rules and overrides with `rules` in one transaction (audited); returns
    the new version. The caller commits (or uses an autocommit connection's transaction)."""
    with conn.transaction():
        before = {"version": current_version(conn)}
        conn.execute(DELETE_RULES)
        conn.execute(DELETE_OVERRIDES)
        with conn.cursor() as cur:
            cur.executemany(
                INSERT_RULE,
                [
                    (r.id, r.kind, i, Jsonb(r.model_dump(mode="json", exclude_defaults=True)))
                    for i, r in enumerate(rules.rules)
                ],
            )
            cur.executemany(
                INSERT_OVERRIDE,
                [
                    (
                        o.rule,
                        o.kind,
                        o.district,
                        o.device,
                        Jsonb(o.model_dump(mode="json", exclude_none=True)),
                    )
                    for o in rules.overrides
                ],
            )
        settings = {"reopen_within_s": rules.reopen_within_s}
        row = conn.execute(INSERT_SET, (Jsonb(settings), actor.name, note)).fetchone()
        assert row is not None
        version = int(row[0])
        audit.record(
            conn,
            actor,
            "alert_rules.load",
            "alert_rules",
            str(version),
            before=before,
            after={
                "version": version,
                "rules": len(rules.rules),
                "overrides": len(rules.overrides),
            },
            detail={"note": note} if note else None,
        )
        conn.execute(NOTIFY, (str(version),))
    return version


def current_version(conn: psycopg.Connection) -> int | None:
    row = conn.execute(CURRENT_VERSION).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def load_rule_set_data(conn: psycopg.Connection) -> dict[str, Any] | None:
    """The stored set as rule-file data (validate with `RuleSet.model_validate`), or None
    when nothing was ever loaded."""
    settings = conn.execute(SELECT_SETTINGS).fetchone()
    if settings is None:
        return None
    rules = [row[0] for row in conn.execute(SELECT_RULES)]
    overrides = [row[0] for row in conn.execute(SELECT_OVERRIDES)]
    return {**settings[0], "rules": rules, "overrides": overrides}
