-- Alert engine (issue #10): rules and overrides as data, per-device rule state, and the
-- engine's own columns on alerts (008 is the shared contract and stays as it is).

-- The rule set in force: one row per rule, its definition as the rule file gives it
-- (urbanwatch/alerting/model.py validates it). Replaced as a whole by
-- `urbanwatch alerts rules load FILE`; edits are audited (audit_log).
CREATE TABLE IF NOT EXISTS alert_rules (
    rule_id    text PRIMARY KEY,
    kind       text NOT NULL,
    position   integer NOT NULL,                 -- order in the file
    definition jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Overrides of one rule for a kind, a district or one device (the most specific wins).
CREATE TABLE IF NOT EXISTS alert_rule_overrides (
    id         bigserial PRIMARY KEY,
    rule_id    text NOT NULL,
    kind       text,
    district   text,
    device_id  text,
    definition jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (num_nonnulls(kind, district, device_id) = 1)
);
CREATE INDEX IF NOT EXISTS alert_rule_overrides_rule_idx ON alert_rule_overrides (rule_id);

-- Settings of the whole set (reopen window) and its version: every change bumps it, and
-- a running engine reloads when it sees a new one (it keeps its last good set on error).
CREATE TABLE IF NOT EXISTS alert_rule_sets (
    version    bigserial PRIMARY KEY,
    settings   jsonb NOT NULL DEFAULT '{}',
    loaded_by  text NOT NULL,
    loaded_at  timestamptz NOT NULL DEFAULT now(),
    note       text
);

-- What the engine remembers per device (alerting/state.py), written in the transaction
-- that writes the alert changes it caused, so a restart resumes exactly.
CREATE TABLE IF NOT EXISTS alert_device_state (
    device_id  text PRIMARY KEY,
    state      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- A fault back within the reopen window reopens its alert: flap_count counts the returns.
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS flap_count integer NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS last_fired_at timestamptz;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'urbanwatch_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE
            ON alert_rules, alert_rule_overrides, alert_rule_sets, alert_device_state
            TO urbanwatch_app;
        GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO urbanwatch_app;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'grants to urbanwatch_app skipped: %', SQLERRM;
END
$$;
