-- One place for an alert's on-site and resolve deadlines (docs/notifications.md "On-site and
-- resolve deadlines"): 022's alerts_work_defaults (an alert written) and 023's
-- alerts_sla_restart (an alert reopened) each looked up alert_sla and added its periods.
-- Both are redefined here to call alert_sla_deadlines(); what they set is unchanged
-- (test_sla_deadlines_of_027_are_those_of_022_and_023 in tests/test_alerts_sla_escalation.py
-- compares them with 022's and 023's, over times and SLA periods). 022 and 023 stay
-- as they are.

-- The deadlines of an alert of `p_severity` whose round of work starts at `p_from`: its
-- severity's alert_sla periods after it. NULL where the period is NULL (info) or the
-- severity has no row.
CREATE OR REPLACE FUNCTION alert_sla_deadlines(
    p_severity text, p_from timestamptz,
    OUT site_due_at timestamptz, OUT resolve_due_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT p_from + s.site_s * interval '1 second', p_from + s.resolve_s * interval '1 second'
    FROM (VALUES (1)) one (x) LEFT JOIN alert_sla s ON s.severity = p_severity
$$;

-- 022's function: the deadlines count from when the fault began, or from when urbanwatch
-- learned of it if that is later (late data, a replay): nobody can be on site before anyone
-- is told.
CREATE OR REPLACE FUNCTION alerts_work_defaults() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    muted bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT d.site_due_at, d.resolve_due_at INTO NEW.site_due_at, NEW.resolve_due_at
        FROM alert_sla_deadlines(NEW.severity, GREATEST(NEW.opened_at, now())) d;
    ELSIF NOT ((OLD.status = 'resolved' AND NEW.status <> 'resolved')
               OR (NOT OLD.active AND NEW.active)) THEN
        RETURN NEW;  -- only an alert (re)starting is checked against the mutes
    END IF;
    muted := alert_mute_for(NEW.device_id, NEW.subject, NEW.district,
                            coalesce(NEW.last_fired_at, NEW.opened_at));
    IF muted IS NOT NULL THEN
        NEW.suppressed := true;
        NEW.muted_by := muted;
        NEW.detail := NEW.detail || jsonb_build_object('muted_by', muted);
    END IF;
    RETURN NEW;
END
$$;

-- 023's function: a reopened alert's deadlines restart from the reopening, and the on-site
-- record and the escalation marks of the previous round are cleared.
CREATE OR REPLACE FUNCTION alerts_sla_restart() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'resolved' AND NEW.status <> 'resolved' THEN
        SELECT d.site_due_at, d.resolve_due_at INTO NEW.site_due_at, NEW.resolve_due_at
        FROM alert_sla_deadlines(NEW.severity, now()) d;
        NEW.on_site_at := NULL;
        NEW.on_site_by := NULL;
        NEW.site_escalated_at := NULL;
        NEW.resolve_escalated_at := NULL;
    END IF;
    RETURN NEW;
END
$$;
