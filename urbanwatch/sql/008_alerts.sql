-- Alerts (issue #10): the shared contract between the alert engine (writes), the notifier
-- (reads events, delivers) and the API (people acknowledge and resolve). Rules and their
-- per-device state live in the engine's own migrations; this file holds only what the three
-- agree on.
--
-- One unresolved alert per dedup key (rule_id, subject): however many readings keep matching,
-- they update that alert. `subject` is what the alert is about: a device id, or a group id for
-- alerts about several devices (a lighting circuit, a DMA, a storm incident).

CREATE TABLE IF NOT EXISTS alerts (
    id              bigserial PRIMARY KEY,
    rule_id         text NOT NULL,                 -- MH_TILT, SL_CIRCUIT_SUPPLY_LOSS, STORM, …
    subject         text NOT NULL,                 -- device id or group id (dedup key with rule_id)
    device_id       text,                          -- the device, when the alert is about one
    kind            text NOT NULL,                 -- manhole | waterlog | streetlight | watermeter
    district        text,
    unit            text,                          -- responsible unit (routing), may be NULL
    severity        text NOT NULL CHECK (severity IN ('info', 'warning', 'alarm', 'critical')),
    status          text NOT NULL DEFAULT 'open'
                    CHECK (status IN ('open', 'acknowledged', 'resolved')),
    active          boolean NOT NULL DEFAULT true, -- the condition holds now (false once cleared)
    opened_at       timestamptz NOT NULL,          -- when the condition started (reading time)
    updated_at      timestamptz NOT NULL DEFAULT now(),
    cleared_at      timestamptz,
    acknowledged_at timestamptz,
    acknowledged_by text,                          -- an audit actor: user:<name>, key:<id>
    resolved_at     timestamptz,
    resolved_by     text,                          -- an actor, or 'engine' for auto-resolve
    parent_id       bigint REFERENCES alerts (id), -- grouped under (circuit, storm incident)
    suppressed      boolean NOT NULL DEFAULT false,-- inhibited by its parent: not notified
    title           text NOT NULL,                 -- Chinese first, English alongside
    detail          jsonb NOT NULL DEFAULT '{}'    -- values that triggered it, thresholds, counts
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_unresolved_idx
    ON alerts (rule_id, subject) WHERE status <> 'resolved';
CREATE INDEX IF NOT EXISTS alerts_unresolved_idx
    ON alerts (severity, kind, district) WHERE status <> 'resolved';
CREATE INDEX IF NOT EXISTS alerts_device_idx ON alerts (device_id, opened_at);
CREATE INDEX IF NOT EXISTS alerts_opened_idx ON alerts (opened_at);
CREATE INDEX IF NOT EXISTS alerts_parent_idx ON alerts (parent_id) WHERE parent_id IS NOT NULL;

-- Every change of an alert, in the transaction that made it: the notifier's input and the
-- alert's history. Written by the engine (opened, escalated, cleared, refired, resolved by
-- 'engine', suppressed, updated) and by people through the API (acknowledged, resolved,
-- reopened, commented).
CREATE TABLE IF NOT EXISTS alert_events (
    id       bigserial PRIMARY KEY,
    alert_id bigint NOT NULL REFERENCES alerts (id),
    at       timestamptz NOT NULL DEFAULT now(),
    event    text NOT NULL CHECK (event IN (
                 'opened', 'escalated', 'deescalated', 'cleared', 'refired', 'updated',
                 'suppressed', 'unsuppressed', 'acknowledged', 'resolved', 'reopened',
                 'commented')),
    actor    text NOT NULL,                         -- 'engine' or an audit actor
    severity text NOT NULL,
    detail   jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS alert_events_alert_idx ON alert_events (alert_id, id);
CREATE INDEX IF NOT EXISTS alert_events_at_idx ON alert_events (at);

-- Authorised work windows (docs/domain.md §2.3 MH_OPEN): a cover opened inside one is not a
-- critical alarm. Entered by operators (API/CLI) or imported from the work-order system.
CREATE TABLE IF NOT EXISTS work_windows (
    id         bigserial PRIMARY KEY,
    device_id  text NOT NULL,
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL CHECK (ends_at > starts_at),
    work_order text,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS work_windows_device_idx ON work_windows (device_id, starts_at);

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'urbanwatch_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON alerts, alert_events, work_windows
            TO urbanwatch_app;
        REVOKE UPDATE, DELETE, TRUNCATE ON alert_events FROM urbanwatch_app;
        GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO urbanwatch_app;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'grants to urbanwatch_app skipped: %', SQLERRM;
END
$$;
