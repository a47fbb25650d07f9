-- What the KPI value cache (urbanwatch/plan/values.py, docs/kpis.md "Cached values") keys
-- on: one counter row per input area, bumped once by every committed transaction that
-- changed a table of that area. A cached value is reused only while every counter still
-- reads what it read before computing the value (and within the same minute: readings are
-- not counted here, docs/kpis.md says how stale that makes a value).
--
-- One row per area, never more rows: nothing to prune. The counters are bumped by DEFERRED
-- constraint triggers, so the row lock is taken at commit, after every other lock of the
-- transaction (a writer never waits on it while holding a ledger row another writer
-- needs), and a transaction-local flag makes it one UPDATE per area per transaction
-- however many rows it changed. The bump commits with the change itself: a reader sees
-- both or neither.
CREATE TABLE IF NOT EXISTS plan_input_versions (
    area        text PRIMARY KEY,
    version     bigint NOT NULL DEFAULT 0,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO plan_input_versions (area) VALUES ('ledgers'), ('alerts')
ON CONFLICT (area) DO NOTHING;

CREATE OR REPLACE FUNCTION plan_input_bump() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    flag text := 'urbanwatch.plan_bumped_' || TG_ARGV[0];
BEGIN
    IF coalesce(current_setting(flag, true), '') <> '1' THEN
        UPDATE plan_input_versions SET version = version + 1, changed_at = now()
        WHERE area = TG_ARGV[0];
        PERFORM set_config(flag, '1', true);  -- local: reset when the transaction ends
    END IF;
    RETURN NULL;
END
$$;

-- The ledgers and the registry the KPIs read (urbanwatch/queries/kpi.py, lighting_ledger.py,
-- water_ledger.py). Not device_status or the readings: those move every second.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['devices', 'districts', 'manhole_covers', 'manhole_defects',
        'waterlog_points', 'lighting_road_segments', 'lighting_facilities', 'water_dmas',
        'water_meters', 'water_supply_years', 'water_volumes', 'hidden_dangers']
    LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS plan_input_bump ON %I', t);
        EXECUTE format('CREATE CONSTRAINT TRIGGER plan_input_bump AFTER INSERT OR UPDATE OR '
                       'DELETE ON %I DEFERRABLE INITIALLY DEFERRED FOR EACH ROW '
                       'EXECUTE FUNCTION plan_input_bump(''ledgers'')', t);
        EXECUTE format('DROP TRIGGER IF EXISTS plan_input_bump_truncate ON %I', t);
        EXECUTE format('CREATE TRIGGER plan_input_bump_truncate AFTER TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION plan_input_bump(''ledgers'')', t);
    END LOOP;
END
$$;

-- Alerts: the lighting KPIs count lamp alarms. A new or deleted alert bumps; an update only
-- when a field a KPI could read changed (not the engine's bookkeeping of an open alert).
DROP TRIGGER IF EXISTS plan_input_bump ON alerts;
CREATE CONSTRAINT TRIGGER plan_input_bump AFTER INSERT OR DELETE ON alerts
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION plan_input_bump('alerts');
DROP TRIGGER IF EXISTS plan_input_bump_update ON alerts;
CREATE CONSTRAINT TRIGGER plan_input_bump_update AFTER UPDATE ON alerts
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN ((OLD.kind, OLD.severity, OLD.status, OLD.rule_id, OLD.subject, OLD.device_id,
           OLD.district, OLD.opened_at, OLD.cleared_at, OLD.resolved_at)
          IS DISTINCT FROM
          (NEW.kind, NEW.severity, NEW.status, NEW.rule_id, NEW.subject, NEW.device_id,
           NEW.district, NEW.opened_at, NEW.cleared_at, NEW.resolved_at))
    EXECUTE FUNCTION plan_input_bump('alerts');
DROP TRIGGER IF EXISTS plan_input_bump_truncate ON alerts;
CREATE TRIGGER plan_input_bump_truncate AFTER TRUNCATE ON alerts
    FOR EACH STATEMENT EXECUTE FUNCTION plan_input_bump('alerts');

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'urbanwatch_app') THEN
        GRANT SELECT, UPDATE ON plan_input_versions TO urbanwatch_app;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'urbanwatch_grafana') THEN
        GRANT SELECT ON plan_input_versions TO urbanwatch_grafana;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'grants for migration 028 skipped (the migrating role may not grant): %',
        SQLERRM;
END
$$;
