-- SLA escalation on the on-site and resolve deadlines (issue #10 "Lifecycle and work",
-- docs/notifications.md). 018 stores site_due_at and resolve_due_at; this adds the on-site
-- state people record (POST /alerts/{id}/on-site, event 'on_site') and, per deadline, when
-- the notifier escalated it: set in the transaction that writes the 'escalated' event, so
-- each deadline escalates once, across notifier restarts and with several notifiers.

ALTER TABLE alerts ADD COLUMN IF NOT EXISTS on_site_at timestamptz;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS on_site_by text;           -- an audit actor
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS site_escalated_at timestamptz;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS resolve_escalated_at timestamptz;

-- What the notifier scans each round: unresolved alerts whose deadline is not yet escalated.
CREATE INDEX IF NOT EXISTS alerts_site_due_idx ON alerts (site_due_at)
    WHERE status <> 'resolved' AND on_site_at IS NULL AND site_escalated_at IS NULL
      AND site_due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS alerts_resolve_due_idx ON alerts (resolve_due_at)
    WHERE status <> 'resolved' AND resolve_escalated_at IS NULL AND resolve_due_at IS NOT NULL;

-- 'on_site' joins the events people write. The allowed list is extended, not restated, so
-- an event another migration added before this one stays allowed.
DO $$
DECLARE
    events text[];
BEGIN
    SELECT array_agg(m[1] ORDER BY n) INTO events
    FROM pg_constraint c,
         regexp_matches(pg_get_constraintdef(c.oid), '''([a-z_]+)''', 'g')
             WITH ORDINALITY AS x(m, n)
    WHERE c.conrelid = 'alert_events'::regclass AND c.conname = 'alert_events_event_check';
    IF events IS NOT NULL AND NOT 'on_site' = ANY (events) THEN
        events := events || ARRAY['on_site'];
        ALTER TABLE alert_events DROP CONSTRAINT IF EXISTS alert_events_event_check;
        EXECUTE format('ALTER TABLE alert_events ADD CONSTRAINT alert_events_event_check '
                       'CHECK (event = ANY (%L::text[]))', events);
    END IF;
END
$$;

-- A reopened alert is a new round of work: its on-site and resolve deadlines restart from
-- the reopening (alert_sla of its severity now), and the on-site record and the per-deadline
-- escalation marks of the previous round are cleared. 018's trigger sets them on insert only.
CREATE OR REPLACE FUNCTION alerts_sla_restart() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    sla alert_sla%ROWTYPE;
BEGIN
    IF OLD.status = 'resolved' AND NEW.status <> 'resolved' THEN
        SELECT * INTO sla FROM alert_sla WHERE severity = NEW.severity;
        NEW.site_due_at := now() + sla.site_s * interval '1 second';
        NEW.resolve_due_at := now() + sla.resolve_s * interval '1 second';
        NEW.on_site_at := NULL;
        NEW.on_site_by := NULL;
        NEW.site_escalated_at := NULL;
        NEW.resolve_escalated_at := NULL;
    END IF;
    RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS alerts_sla_restart ON alerts;
CREATE TRIGGER alerts_sla_restart BEFORE UPDATE OF status ON alerts
    FOR EACH ROW EXECUTE FUNCTION alerts_sla_restart();
