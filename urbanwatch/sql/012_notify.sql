-- Routing and notifications (issue #10, docs/notifications.md). Reads the alert contract
-- (008_alerts.sql); writes only its own tables, the SLA columns below, and 'escalated'
-- alert_events when an acknowledge deadline passes.
--
-- Routing as data, replaced as a whole by `urbanwatch alerts routes load FILE`:
-- units -> crews -> channels, and routes (kind, district, min severity) -> unit, crews.

CREATE TABLE IF NOT EXISTS notify_units (
    id      text PRIMARY KEY,
    name    text NOT NULL,                          -- Chinese first (市城市管理局)
    name_en text NOT NULL DEFAULT ''
);

CREATE TABLE IF NOT EXISTS notify_channels (
    name        text PRIMARY KEY,
    type        text NOT NULL CHECK (type IN ('webhook', 'wecom', 'dingtalk', 'mqtt', 'email')),
    config      jsonb NOT NULL DEFAULT '{}',        -- URLs, addresses and the NAMES of secrets
    rate_per_min integer CHECK (rate_per_min > 0)   -- messages a minute; NULL: unlimited
);

CREATE TABLE IF NOT EXISTS notify_crews (
    name     text PRIMARY KEY,
    unit     text NOT NULL REFERENCES notify_units (id),
    label    text NOT NULL DEFAULT '',
    channels text[] NOT NULL
);

CREATE TABLE IF NOT EXISTS notify_routes (
    id           bigserial PRIMARY KEY,
    line         integer NOT NULL,                  -- where it is in the loaded file
    kind         text,                              -- NULL: any
    district     text,                              -- NULL: any
    min_severity text CHECK (min_severity IN ('info', 'warning', 'alarm', 'critical')),
    unit         text NOT NULL REFERENCES notify_units (id),
    crews        text[] NOT NULL,
    escalate     text[] NOT NULL DEFAULT '{}'       -- crews added at escalation level 1, 2, …
);

-- Acknowledge deadline per severity (docs/domain.md §2.3, §4.3); NULL: never escalates.
CREATE TABLE IF NOT EXISTS notify_sla (
    severity text PRIMARY KEY CHECK (severity IN ('info', 'warning', 'alarm', 'critical')),
    ack_s    integer CHECK (ack_s > 0),
    max_level integer NOT NULL DEFAULT 2 CHECK (max_level >= 0)
);

-- What the loaded route file was (one row per load; the audit log has who).
CREATE TABLE IF NOT EXISTS notify_route_loads (
    id        bigserial PRIMARY KEY,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    source    text NOT NULL,
    sha256    text NOT NULL
);

-- SLA on the alert itself: the deadline to acknowledge and how often it was escalated.
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS ack_due_at timestamptz;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS escalation_level integer NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS alerts_ack_due_idx ON alerts (ack_due_at)
    WHERE status = 'open' AND ack_due_at IS NOT NULL;

-- Every alert_event lands here in the transaction that wrote it, so none is missed however
-- ids interleave between concurrent writers (a cursor on alert_events.id would skip an id
-- committed after a later one). The notifier routes a row into the outbox and deletes it in
-- one transaction.
CREATE TABLE IF NOT EXISTS notify_inbox (
    event_id bigint PRIMARY KEY REFERENCES alert_events (id)
);

CREATE OR REPLACE FUNCTION urbanwatch_notify_enqueue() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO notify_inbox (event_id) VALUES (NEW.id);
    PERFORM pg_notify('urbanwatch_notify', '');
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER alert_events_notify
    AFTER INSERT ON alert_events
    FOR EACH ROW EXECUTE FUNCTION urbanwatch_notify_enqueue();

-- One row per (event, channel): the idempotency key is its identity for the receiver.
CREATE TABLE IF NOT EXISTS notify_outbox (
    id              bigserial PRIMARY KEY,
    event_id        bigint NOT NULL REFERENCES alert_events (id),
    alert_id        bigint NOT NULL REFERENCES alerts (id),
    channel         text NOT NULL,
    crews           text[] NOT NULL,
    idempotency_key text NOT NULL UNIQUE,
    message         jsonb NOT NULL,                 -- the event as routed (what is delivered)
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'skipped', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,                    -- a notifier is sending it until then
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    digest_id       bigint,                         -- the attempt that carried it in a digest
    last_error      text
);
CREATE INDEX IF NOT EXISTS notify_outbox_due_idx
    ON notify_outbox (channel, next_attempt_at) WHERE status = 'pending';

-- Every attempt, one row written before the request leaves (outcome 'sending') and
-- completed after: a notifier killed mid-delivery leaves a 'sending' row behind.
CREATE TABLE IF NOT EXISTS notify_attempts (
    id          bigserial PRIMARY KEY,
    channel     text NOT NULL,
    outbox_ids  bigint[] NOT NULL,                  -- one row, or every row of a digest
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    outcome     text NOT NULL DEFAULT 'sending'
                CHECK (outcome IN ('sending', 'ok', 'failed')),
    status_code integer,
    error       text,
    notifier    text NOT NULL
);
CREATE INDEX IF NOT EXISTS notify_attempts_channel_idx ON notify_attempts (channel, started_at);

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'urbanwatch_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON notify_units, notify_channels, notify_crews,
            notify_routes, notify_sla, notify_route_loads, notify_inbox, notify_outbox,
            notify_attempts TO urbanwatch_app;
        GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO urbanwatch_app;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'grants to urbanwatch_app skipped: %', SQLERRM;
END
$$;
