-- Dashboards, part 3 (issue #12, docs/dashboards.md): what the device map and the water
-- board's per-DMA R_BL panels read.
--
-- The device map derives each device's state from the devices table and its unresolved
-- alerts (an offline rule's alert → offline, any other → alerting), never from readings.
-- Which rules are offline rules is in alert_rules.definition; Grafana reads only each rule's
-- id, kind and type through this view, not the definitions (thresholds, expressions).
CREATE OR REPLACE VIEW alert_rule_types AS
    SELECT rule_id, kind, definition->>'type' AS type FROM alert_rules;

-- R_BL per DMA as the daily snapshot computed it (urbanwatch/kpi/snapshot.py): the items of
-- the city-wide value, one row per day, KPI and DMA; a recomputed day overwrites its rows.
CREATE TABLE IF NOT EXISTS kpi_daily_dma (
    day           date NOT NULL,
    kpi           text NOT NULL,
    dma_id        text NOT NULL,
    district      text,
    value         double precision,   -- NULL = no supply or billed volume
    supply_m3     double precision,
    authorised_m3 double precision,
    note          text NOT NULL DEFAULT '',
    computed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kpi, dma_id, day)
);
CREATE INDEX IF NOT EXISTS kpi_daily_dma_day_idx ON kpi_daily_dma (day);

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'urbanwatch_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON kpi_daily_dma TO urbanwatch_app;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'urbanwatch_grafana') THEN
        RAISE NOTICE 'urbanwatch_grafana role absent (migration 017 skipped it): no grants';
        RETURN;
    END IF;
    GRANT SELECT ON alert_rule_types, kpi_daily_dma TO urbanwatch_grafana;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'grants for migration 021 skipped (the migrating role may not grant): %',
        SQLERRM;
END
$$;
