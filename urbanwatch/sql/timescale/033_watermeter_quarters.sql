-- WS_FLOW_ANOMALY's expected flow (issue #10; docs/alerts.md "Expected flow and pressure"):
-- each water meter's 15-min means, as a continuous aggregate (real-time: the quarters not
-- yet materialized are aggregated from the readings). The plain variant
-- (plain/033_watermeter_quarters.sql) builds the same and says why. A database migrated
-- with readings in it gets the older quarters with `urbanwatch rollup`. Kept for 35 days:
-- the profile reads 28 days back.
CREATE MATERIALIZED VIEW watermeter_quarter
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '15 minutes', ts) AS bucket, device_id,
       count(*) AS n,
       avg(flow_m3_h) AS avg_flow_m3_h,
       avg(pressure_mpa) AS avg_pressure_mpa
FROM watermeter_readings
GROUP BY 1, 2
WITH NO DATA;
SELECT add_continuous_aggregate_policy('watermeter_quarter',
    start_offset => INTERVAL '4 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '15 minutes', if_not_exists => true);
SELECT add_retention_policy('watermeter_quarter', INTERVAL '35 days', if_not_exists => true);
