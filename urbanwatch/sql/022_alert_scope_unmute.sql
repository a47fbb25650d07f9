-- Crews read their own unit's alerts, and a maintenance mute that ends un-suppresses what it
-- quieted (issue #10, docs/api-alerts.md). 008, 012 and 018 stay as they are; this file
-- replaces 018's trigger function with one that also records the mute in a column.

-- The mute that suppressed an alert (018's trigger wrote it only into detail.muted_by, which
-- the engine overwrites when it updates a group alert's detail). NULL: not suppressed by a
-- mute (a parent's inhibition is parent_id + suppressed, 011).
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS muted_by bigint;
UPDATE alerts SET muted_by = (detail ->> 'muted_by')::bigint
WHERE muted_by IS NULL AND suppressed AND status <> 'resolved' AND parent_id IS NULL
  AND jsonb_typeof(detail -> 'muted_by') = 'number';
CREATE INDEX IF NOT EXISTS alerts_muted_idx ON alerts (id) WHERE muted_by IS NOT NULL;

-- 018's function, and the mute goes into muted_by too. An alert that restarts with no mute
-- covering it keeps the suppression of a mute that ended: alert_unmute_ended() lifts it
-- (one path, one 'unsuppressed' event).
CREATE OR REPLACE FUNCTION alerts_work_defaults() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    muted bigint;
    sla alert_sla%ROWTYPE;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT * INTO sla FROM alert_sla WHERE severity = NEW.severity;
        -- counted from when the fault began, or from when urbanwatch learned of it if that
        -- is later (late data, a replay): nobody can be on site before anyone is told
        NEW.site_due_at := GREATEST(NEW.opened_at, now()) + sla.site_s * interval '1 second';
        NEW.resolve_due_at := GREATEST(NEW.opened_at, now()) + sla.resolve_s * interval '1 second';
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

-- A mute ends (its ends_at passes, or it is deleted): every unresolved alert it suppressed
-- that no other mute covers now is un-suppressed, with one 'unsuppressed' event (the notifier
-- delivers it: docs/notifications.md). One still covered by another mute stays suppressed
-- and records that mute. The alert's events not yet routed by the notifier were written
-- while it was suppressed: they would have been routed to nothing, so they leave the inbox
-- here, in the same transaction, and the crew hears of the alert once, by 'unsuppressed'.
-- Its acknowledge clock starts then (ack_due_at NULL: the notifier sets it from this event).
-- Alerts locked by another transaction (the engine writing them) are left to the next call.
-- Called by the notifier's loop and by DELETE /windows/mutes/{id}; returns how many.
CREATE OR REPLACE FUNCTION alert_unmute_ended(p_actor text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    a record;
    cover bigint;
    n integer := 0;
BEGIN
    FOR a IN
        SELECT id, device_id, subject, district, severity, muted_by, parent_id, suppressed
        FROM alerts
        WHERE muted_by IS NOT NULL AND status <> 'resolved'
          AND NOT EXISTS (SELECT FROM alert_mutes m WHERE m.id = alerts.muted_by
                          AND m.starts_at <= now() AND m.ends_at > now())
        ORDER BY id FOR UPDATE SKIP LOCKED
    LOOP
        cover := alert_mute_for(a.device_id, a.subject, a.district, now());
        IF cover IS NOT NULL THEN  -- another mute covers it: stays quiet, under that one
            UPDATE alerts SET muted_by = cover,
                   detail = detail || jsonb_build_object('muted_by', cover)
            WHERE id = a.id;
        ELSIF a.parent_id IS NOT NULL OR NOT a.suppressed THEN
            -- its parent holds the suppression (or nothing does): only the mute is forgotten
            UPDATE alerts SET muted_by = NULL, detail = detail - 'muted_by' WHERE id = a.id;
        ELSE
            DELETE FROM notify_inbox i USING alert_events e
            WHERE e.id = i.event_id AND e.alert_id = a.id;
            UPDATE alerts SET suppressed = false, muted_by = NULL, ack_due_at = NULL,
                   detail = detail - 'muted_by', updated_at = now()
            WHERE id = a.id;
            INSERT INTO alert_events (alert_id, event, actor, severity, detail)
            VALUES (a.id, 'unsuppressed', p_actor, a.severity,
                    jsonb_build_object('mute_id', a.muted_by));
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END
$$;

-- The names a crew's unit may go by for an alert (docs/api-alerts.md "Who sees and works
-- what"): the unit it is routed to (`p_unit`, the effective unit) and the unit of the crew
-- it is assigned to (`p_crew`), each by its id, its name and its English name.
CREATE OR REPLACE FUNCTION alert_unit_aliases(p_unit text, p_crew text)
RETURNS text[] LANGUAGE sql STABLE AS $$
    SELECT array_remove(ARRAY[p_unit] || coalesce(array_agg(v.name), '{}'), NULL)
    FROM notify_units u
    CROSS JOIN LATERAL (VALUES (u.id), (u.name), (nullif(u.name_en, ''))) v (name)
    WHERE u.id = p_unit OR u.id = (SELECT c.unit FROM notify_crews c WHERE c.name = p_crew)
$$;

-- The inverse, for filtering many alerts at once: the units that go by `p_unit` (a crew's
-- unit as its key or account names it) and `p_unit` itself. An alert is in the crew's scope
-- when its effective unit, or its assigned crew's unit, is one of them — exactly when
-- `p_unit` is one of alert_unit_aliases(unit, crew) (tests/test_api_alerts_scope.py checks
-- the list against each alert by id).
CREATE OR REPLACE FUNCTION crew_scope_units(p_unit text)
RETURNS text[] LANGUAGE sql STABLE AS $$
    SELECT array_append(coalesce(array_agg(u.id), '{}'), p_unit) FROM notify_units u
    WHERE p_unit IN (u.id, u.name, nullif(u.name_en, ''))
$$;
