-- Set-based defaults for new alerts (issue #10 "Benchmarks", docs/alerts.md "Writing alerts in
-- bulk"). 027's alerts_work_defaults ran BEFORE INSERT OR UPDATE FOR EACH ROW and, for every
-- row, called alert_sla_deadlines() and alert_mute_for(): SQL functions planned afresh at
-- each call from PL/pgSQL, ~35 us a row of an engine's bulk INSERT (~150 us on the loaded
-- city-scale database), which capped the offline burst at ~3,000 alerts/s. Here:
--
-- * alert_work_defaults(): 027's deadlines and 022's mute rule for one alert as an inlinable
--   SQL table function, so a statement joins it over all its rows with one plan;
-- * INSERT: one AFTER INSERT FOR EACH STATEMENT trigger over the statement's new rows
--   (REFERENCING NEW TABLE) sets the deadlines and the mute, as 027's row trigger did,
--   with one UPDATE of the rows whose values differ. The engine's bulk INSERT writes the
--   same values itself from the same function (urbanwatch/queries/alerts.py), so for it the
--   trigger finds nothing to change and each alert is written once;
-- * UPDATE: 027's row trigger stays, but with a WHEN clause saying when its function does
--   anything (an alert restarting), and 023's alerts_sla_restart likewise (a reopening): no
--   PL/pgSQL call for the engine's ordinary updates;
-- * alert_events: 012's per-row enqueue becomes one INSERT … SELECT and one pg_notify per
--   statement (PostgreSQL folds a transaction's identical notifications into one anyway).
--
-- Behaviour is unchanged: tests/test_alerts_triggers.py writes the same sequences of alerts
-- (opens, mutes, work windows, severities, clears, reopens) with these triggers and with
-- those of 012/022/023/027 in one transaction and compares every column. Functions of 012,
-- 022, 023 and 027 stay defined (alerts_work_defaults still serves UPDATE).

-- An alert's defaults: the on-site and resolve deadlines of `p_severity` counted from when
-- the fault began or, if later, from now (027), and the mute covering it at `p_at` (022's
-- alert_mute_for: its device's own attributes, or a group alert's subject), or NULL.
CREATE OR REPLACE FUNCTION alert_work_defaults(
    p_device text, p_subject text, p_district text, p_severity text, p_opened timestamptz,
    p_at timestamptz)
RETURNS TABLE (site_due_at timestamptz, resolve_due_at timestamptz, muted_by bigint)
LANGUAGE sql STABLE AS $$
    SELECT GREATEST(p_opened, now()) + s.site_s * interval '1 second',
           GREATEST(p_opened, now()) + s.resolve_s * interval '1 second',
           (SELECT m.id FROM alert_mutes m
            LEFT JOIN devices d ON d.device_id = p_device
            WHERE m.starts_at <= p_at AND m.ends_at > p_at AND (
                (m.scope = 'device' AND m.target IN (p_device, p_subject))
                OR (m.scope = 'district' AND m.target = p_district)
                OR (m.scope = 'segment' AND m.target = d.attrs ->> 'segment')
                OR (m.scope = 'circuit' AND m.target IN (d.attrs ->> 'circuit_id', p_subject))
                OR (m.scope = 'dma' AND m.target IN (d.attrs ->> 'dma_id', p_subject)))
            ORDER BY m.id LIMIT 1)
    FROM (VALUES (1)) one (x) LEFT JOIN alert_sla s ON s.severity = p_severity
$$;

-- 027's INSERT branch for a whole statement: every new alert gets its deadlines (replacing
-- what the INSERT gave, as before) and, when a mute covers it, is suppressed, muted_by it
-- and detail.muted_by it (kept as given otherwise).
CREATE OR REPLACE FUNCTION alerts_work_defaults_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE alerts a
    SET site_due_at = w.site_due_at, resolve_due_at = w.resolve_due_at,
        suppressed = a.suppressed OR w.muted_by IS NOT NULL,
        muted_by = coalesce(w.muted_by, a.muted_by),
        detail = CASE WHEN w.muted_by IS NULL THEN a.detail
                      ELSE a.detail || jsonb_build_object('muted_by', w.muted_by) END
    FROM new_alerts n
    CROSS JOIN LATERAL alert_work_defaults(n.device_id, n.subject, n.district, n.severity,
                                           n.opened_at, coalesce(n.last_fired_at, n.opened_at)) w
    WHERE a.id = n.id
      AND (a.site_due_at IS DISTINCT FROM w.site_due_at
           OR a.resolve_due_at IS DISTINCT FROM w.resolve_due_at
           OR (w.muted_by IS NOT NULL
               AND (NOT a.suppressed OR a.muted_by IS DISTINCT FROM w.muted_by
                    OR a.detail -> 'muted_by' IS DISTINCT FROM to_jsonb(w.muted_by))));
    RETURN NULL;
END
$$;
-- The plan of a statement over thousands of rows costs past jit_above_cost, and compiling it
-- took ~25 ms of a 5,000-row statement's ~30 (measured: docs/alerts.md).
ALTER FUNCTION alerts_work_defaults_insert() SET jit = off;

DROP TRIGGER IF EXISTS alerts_work_defaults ON alerts;
CREATE TRIGGER alerts_work_defaults BEFORE UPDATE ON alerts FOR EACH ROW
    WHEN ((OLD.status = 'resolved' AND NEW.status <> 'resolved') OR (NOT OLD.active AND NEW.active))
    EXECUTE FUNCTION alerts_work_defaults();
DROP TRIGGER IF EXISTS alerts_work_defaults_insert ON alerts;
CREATE TRIGGER alerts_work_defaults_insert AFTER INSERT ON alerts
    REFERENCING NEW TABLE AS new_alerts
    FOR EACH STATEMENT EXECUTE FUNCTION alerts_work_defaults_insert();

DROP TRIGGER IF EXISTS alerts_sla_restart ON alerts;
CREATE TRIGGER alerts_sla_restart BEFORE UPDATE OF status ON alerts FOR EACH ROW
    WHEN (OLD.status = 'resolved' AND NEW.status <> 'resolved')
    EXECUTE FUNCTION alerts_sla_restart();

-- 012's urbanwatch_notify_enqueue for a whole statement.
CREATE OR REPLACE FUNCTION urbanwatch_notify_enqueue_all() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO notify_inbox (event_id) SELECT id FROM new_events;
    IF FOUND THEN
        PERFORM pg_notify('urbanwatch_notify', '');
    END IF;
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS alert_events_notify ON alert_events;
CREATE TRIGGER alert_events_notify AFTER INSERT ON alert_events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION urbanwatch_notify_enqueue_all();
