-- What the long-range panels of the manhole and water boards read instead of every device's
-- hours (issue #12; docs/dashboards.md "How the panels query"). The plain variant
-- (plain/031_panel_rollups.sql) builds the same and says why.
--
-- 1. 井盖 overflow and gas device-hours: a partial index on the per-device hourly aggregate
--    over exactly the panel's condition (dashboards/manhole.py events_sql, docs/domain.md
--    §2.3); TimescaleDB puts it on the aggregate's materialization hypertable.
CREATE INDEX IF NOT EXISTS manhole_hourly_events_idx ON manhole_hourly (bucket)
    INCLUDE (device_id, min_water_distance_m, max_ch4_pct_lel, max_h2s_ppm, max_co_ppm,
             min_o2_pct_vol)
    WHERE min_water_distance_m <= 0.5 OR max_ch4_pct_lel >= 10 OR max_h2s_ppm >= 7
       OR max_co_ppm >= 17 OR min_o2_pct_vol < 19.5;

-- 2. 供水 lowest pressure per DMA: an hourly aggregate per district and DMA (a meter's
--    `dma_id` attribute, NULL without one), attributed as registered when the hour is
--    materialized. A database migrated with readings in it gets the older hours with
--    `urbanwatch rollup` (the policy looks 4 days back).
CREATE MATERIALIZED VIEW watermeter_dma_hourly
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', r.ts) AS bucket, d.district, d.attrs->>'dma_id' AS dma_id,
       count(*) AS n,
       min(r.pressure_mpa) AS min_pressure_mpa
FROM watermeter_readings r JOIN devices d ON d.device_id = r.device_id
GROUP BY 1, 2, 3
WITH NO DATA;
SELECT add_continuous_aggregate_policy('watermeter_dma_hourly',
    start_offset => INTERVAL '4 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '15 minutes', if_not_exists => true);

-- 3. 供水 DMA net inflow and minimum night flow: the hourly rows of the DMA boundary meters
--    only (`meter_role` inlet or outlet), with their district, DMA and role then.
CREATE MATERIALIZED VIEW watermeter_boundary_hourly
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', r.ts) AS bucket, r.device_id, d.district,
       d.attrs->>'dma_id' AS dma_id, d.attrs->>'meter_role' AS meter_role,
       count(*) AS n,
       avg(r.flow_m3_h) AS avg_flow_m3_h
FROM watermeter_readings r JOIN devices d ON d.device_id = r.device_id
WHERE d.attrs->>'meter_role' IN ('inlet', 'outlet')
GROUP BY 1, 2, 3, 4, 5
WITH NO DATA;
SELECT add_continuous_aggregate_policy('watermeter_boundary_hourly',
    start_offset => INTERVAL '4 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '15 minutes', if_not_exists => true);

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'urbanwatch_grafana') THEN
        GRANT SELECT ON watermeter_dma_hourly, watermeter_boundary_hourly TO urbanwatch_grafana;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'urbanwatch_grafana not granted the 031 rollups: %', SQLERRM;
END
$$;
