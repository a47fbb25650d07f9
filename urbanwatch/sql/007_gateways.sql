-- Gateways (issue #9): a gateway publishes batches on {prefix}/gateway/{gateway_id}/telemetry
-- and may only report for the devices registered behind it; ingest dead-letters any other
-- element (foreign_device). A gateway is created when a device first names it.

CREATE TABLE IF NOT EXISTS gateways (
    gateway_id text PRIMARY KEY CHECK (gateway_id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE devices ADD COLUMN IF NOT EXISTS gateway_id text REFERENCES gateways (gateway_id);
CREATE INDEX IF NOT EXISTS devices_gateway_idx ON devices (gateway_id) WHERE gateway_id IS NOT NULL;

GRANT SELECT, INSERT, UPDATE, DELETE ON gateways TO urbanwatch_app;
