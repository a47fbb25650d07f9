-- Working alerts through the API (issue #10 "Lifecycle and work", docs/api-alerts.md):
-- assignment, the on-site and resolve deadlines, maintenance mutes, and the unit an alert is
-- routed to. 008 (the contract), 011 (engine) and 012 (notify) stay as they are.

-- Who works the alert: a crew (notify_crews.name) and/or a person (user name).
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS assigned_crew text;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS assignee text;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS assigned_at timestamptz;
-- SLA deadlines besides notify's ack_due_at (docs/domain.md §2.3: on site ≤ 30 min, site made
-- safe ≤ 2 h for a critical alarm), set when the alert is written.
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS site_due_at timestamptz;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS resolve_due_at timestamptz;
CREATE INDEX IF NOT EXISTS alerts_assigned_idx ON alerts (assigned_crew) WHERE status <> 'resolved';

-- 'assigned' joins the events people write (008 lists the others).
ALTER TABLE alert_events DROP CONSTRAINT IF EXISTS alert_events_event_check;
ALTER TABLE alert_events ADD CONSTRAINT alert_events_event_check CHECK (event IN (
    'opened', 'escalated', 'deescalated', 'cleared', 'refired', 'updated',
    'suppressed', 'unsuppressed', 'acknowledged', 'resolved', 'reopened',
    'commented', 'assigned'));

-- On-site and resolve deadlines per severity, seconds; NULL: none. Defaults [P]:
-- critical from docs/domain.md §2.3 (on site ≤ 30 min, safe ≤ 2 h); alarm from §4.3's
-- "emergency measures ≤ 1 h" / "ordinary fault ≤ 24 h"; warning a working day / three days.
CREATE TABLE IF NOT EXISTS alert_sla (
    severity  text PRIMARY KEY CHECK (severity IN ('info', 'warning', 'alarm', 'critical')),
    site_s    integer CHECK (site_s > 0),
    resolve_s integer CHECK (resolve_s > 0)
);
INSERT INTO alert_sla (severity, site_s, resolve_s) VALUES
    ('critical', 1800, 7200),
    ('alarm', 3600, 86400),
    ('warning', 86400, 259200),
    ('info', NULL, NULL)
ON CONFLICT (severity) DO NOTHING;

-- Maintenance mutes: alerts about what a mute covers are still recorded, but opened (or
-- reopened, refired) suppressed, so the notifier sends nothing (it skips suppressed alerts).
CREATE TABLE IF NOT EXISTS alert_mutes (
    id         bigserial PRIMARY KEY,
    scope      text NOT NULL CHECK (scope IN ('device', 'segment', 'circuit', 'dma', 'district')),
    target     text NOT NULL,              -- device id, segment, circuit id, DMA id, district code
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL CHECK (ends_at > starts_at),
    reason     text NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS alert_mutes_target_idx ON alert_mutes (scope, target, ends_at);

-- The mute covering an alert at `at` (its device's own attributes, or a group alert's
-- subject for circuit and DMA alerts), or NULL.
CREATE OR REPLACE FUNCTION alert_mute_for(
    p_device text, p_subject text, p_district text, at timestamptz
) RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT m.id FROM alert_mutes m
    LEFT JOIN devices d ON d.device_id = p_device
    WHERE m.starts_at <= at AND m.ends_at > at AND (
        (m.scope = 'device' AND m.target IN (p_device, p_subject))
        OR (m.scope = 'district' AND m.target = p_district)
        OR (m.scope = 'segment' AND m.target = d.attrs ->> 'segment')
        OR (m.scope = 'circuit' AND m.target IN (d.attrs ->> 'circuit_id', p_subject))
        OR (m.scope = 'dma' AND m.target IN (d.attrs ->> 'dma_id', p_subject)))
    ORDER BY m.id LIMIT 1
$$;

CREATE OR REPLACE FUNCTION alerts_work_defaults() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    muted bigint;
    sla alert_sla%ROWTYPE;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT * INTO sla FROM alert_sla WHERE severity = NEW.severity;
        NEW.site_due_at := NEW.opened_at + sla.site_s * interval '1 second';
        NEW.resolve_due_at := NEW.opened_at + sla.resolve_s * interval '1 second';
    ELSIF NOT ((OLD.status = 'resolved' AND NEW.status <> 'resolved')
               OR (NOT OLD.active AND NEW.active)) THEN
        RETURN NEW;  -- only an alert (re)starting is checked against the mutes
    END IF;
    muted := alert_mute_for(NEW.device_id, NEW.subject, NEW.district,
                            coalesce(NEW.last_fired_at, NEW.opened_at));
    IF muted IS NOT NULL THEN
        NEW.suppressed := true;
        NEW.detail := NEW.detail || jsonb_build_object('muted_by', muted);
    END IF;
    RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS alerts_work_defaults ON alerts;
CREATE TRIGGER alerts_work_defaults BEFORE INSERT OR UPDATE ON alerts
    FOR EACH ROW EXECUTE FUNCTION alerts_work_defaults();

-- The unit an alert is routed to (the most specific route of notify_routes, as
-- urbanwatch/routing/model.py RouteFile.resolve picks it), when the alert names none.
CREATE OR REPLACE FUNCTION alert_route_unit(p_kind text, p_district text, p_severity text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT r.unit FROM notify_routes r
    WHERE (r.kind IS NULL OR r.kind = p_kind)
      AND (r.district IS NULL OR r.district = p_district)
      AND (r.min_severity IS NULL OR array_position(ARRAY['info', 'warning', 'alarm',
           'critical'], p_severity) >= array_position(ARRAY['info', 'warning', 'alarm',
           'critical'], r.min_severity))
    ORDER BY num_nonnulls(r.kind, r.district, r.min_severity) DESC,
             (r.district IS NOT NULL) DESC, (r.kind IS NOT NULL) DESC,
             coalesce(array_position(ARRAY['info', 'warning', 'alarm', 'critical'],
                                     r.min_severity), 0) DESC, r.id
    LIMIT 1
$$;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'urbanwatch_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON alert_sla, alert_mutes TO urbanwatch_app;
        GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO urbanwatch_app;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'grants to urbanwatch_app skipped: %', SQLERRM;
END
$$;
