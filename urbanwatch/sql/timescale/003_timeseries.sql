-- TimescaleDB variant (applied only when the extension can be loaded; see urbanwatch/migrate.py).
-- Hypertables with 1-day chunks, compression after 7 days (the late-data window is 72 h,
-- DOMAIN.md §6), raw retention of 400 days, and one hourly continuous aggregate per kind
-- kept for good. Real-time aggregation is on so the latest hour is always included.
-- The plain variant (sql/plain/003_timeseries.sql) builds the same `<kind>_hourly` views.

CREATE EXTENSION IF NOT EXISTS timescaledb;

SELECT create_hypertable('manhole_readings', by_range('ts', INTERVAL '1 day'), migrate_data => true);
ALTER TABLE manhole_readings SET (timescaledb.compress,
    timescaledb.compress_segmentby = 'device_id', timescaledb.compress_orderby = 'ts DESC');
SELECT add_compression_policy('manhole_readings', INTERVAL '7 days');
SELECT add_retention_policy('manhole_readings', INTERVAL '400 days');
CREATE MATERIALIZED VIEW manhole_hourly
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', ts) AS bucket, device_id,
       count(*) AS n,
       max(tilt_deg) AS max_tilt_deg,
       avg(tilt_deg) AS avg_tilt_deg,
       count(*) FILTER (WHERE cover_open) AS open_count,
       min(water_distance_m) AS min_water_distance_m,
       max(ch4_pct_lel) AS max_ch4_pct_lel,
       max(h2s_ppm) AS max_h2s_ppm,
       max(co_ppm) AS max_co_ppm,
       min(o2_pct_vol) AS min_o2_pct_vol,
       min(battery_v) AS min_battery_v
FROM manhole_readings
GROUP BY 1, 2
WITH NO DATA;
SELECT add_continuous_aggregate_policy('manhole_hourly',
    start_offset => INTERVAL '4 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '15 minutes');

SELECT create_hypertable('waterlog_readings', by_range('ts', INTERVAL '1 day'), migrate_data => true);
ALTER TABLE waterlog_readings SET (timescaledb.compress,
    timescaledb.compress_segmentby = 'device_id', timescaledb.compress_orderby = 'ts DESC');
SELECT add_compression_policy('waterlog_readings', INTERVAL '7 days');
SELECT add_retention_policy('waterlog_readings', INTERVAL '400 days');
CREATE MATERIALIZED VIEW waterlog_hourly
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', ts) AS bucket, device_id,
       count(*) AS n,
       max(depth_cm) AS max_depth_cm,
       avg(depth_cm) AS avg_depth_cm,
       sum(rain_mm) AS rain_mm,
       max(rain_intensity_mm_h) AS max_rain_intensity_mm_h
FROM waterlog_readings
GROUP BY 1, 2
WITH NO DATA;
SELECT add_continuous_aggregate_policy('waterlog_hourly',
    start_offset => INTERVAL '4 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '15 minutes');

SELECT create_hypertable('streetlight_readings', by_range('ts', INTERVAL '1 day'), migrate_data => true);
ALTER TABLE streetlight_readings SET (timescaledb.compress,
    timescaledb.compress_segmentby = 'device_id', timescaledb.compress_orderby = 'ts DESC');
SELECT add_compression_policy('streetlight_readings', INTERVAL '7 days');
SELECT add_retention_policy('streetlight_readings', INTERVAL '400 days');
CREATE MATERIALIZED VIEW streetlight_hourly
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', ts) AS bucket, device_id,
       count(*) AS n,
       count(*) FILTER (WHERE power_state IN ('on', 'low')) AS on_count,
       avg(active_power_w) AS avg_active_power_w,
       max(active_power_w) AS max_active_power_w,
       min(supply_voltage_v) AS min_supply_voltage_v,
       max(supply_voltage_v) AS max_supply_voltage_v,
       avg(power_factor) AS avg_power_factor,
       max(active_energy_kwh) AS max_active_energy_kwh
FROM streetlight_readings
GROUP BY 1, 2
WITH NO DATA;
SELECT add_continuous_aggregate_policy('streetlight_hourly',
    start_offset => INTERVAL '4 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '15 minutes');

SELECT create_hypertable('watermeter_readings', by_range('ts', INTERVAL '1 day'), migrate_data => true);
ALTER TABLE watermeter_readings SET (timescaledb.compress,
    timescaledb.compress_segmentby = 'device_id', timescaledb.compress_orderby = 'ts DESC');
SELECT add_compression_policy('watermeter_readings', INTERVAL '7 days');
SELECT add_retention_policy('watermeter_readings', INTERVAL '400 days');
CREATE MATERIALIZED VIEW watermeter_hourly
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', ts) AS bucket, device_id,
       count(*) AS n,
       avg(flow_m3_h) AS avg_flow_m3_h,
       min(flow_m3_h) AS min_flow_m3_h,
       max(flow_m3_h) AS max_flow_m3_h,
       min(fwd_total_m3) AS min_fwd_total_m3,
       max(fwd_total_m3) AS max_fwd_total_m3,
       avg(pressure_mpa) AS avg_pressure_mpa,
       min(pressure_mpa) AS min_pressure_mpa
FROM watermeter_readings
GROUP BY 1, 2
WITH NO DATA;
SELECT add_continuous_aggregate_policy('watermeter_hourly',
    start_offset => INTERVAL '4 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '15 minutes');
