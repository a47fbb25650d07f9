-- What ingest needs to survive redelivery and restarts exactly (issue #8, docs/reliability.md).

-- Deliveries stored as dead letters or as status rows without their own ts: a redelivered
-- copy (MQTT DUP flag, same session and packet id) is recognised by its receipt and stored
-- once (urbanwatch/queries/receipts.py). Pruned after two days.
CREATE TABLE IF NOT EXISTS ingest_receipts (
    client_id   text NOT NULL,
    packet_id   integer NOT NULL,
    digest      bytea NOT NULL,          -- blake2b-128 of topic and payload
    received_at timestamptz NOT NULL,
    PRIMARY KEY (client_id, packet_id, digest)
);
CREATE INDEX IF NOT EXISTS ingest_receipts_received_idx ON ingest_receipts (received_at);

-- The subscriptions each worker session holds on the broker, so a resumed session that
-- still has an old subscription (a changed prefix or share group) drops it on connect.
CREATE TABLE IF NOT EXISTS ingest_sessions (
    client_id  text PRIMARY KEY,
    filters    text[] NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
