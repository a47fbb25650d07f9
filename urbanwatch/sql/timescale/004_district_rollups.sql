-- Hourly rollups per district and kind: what KPIs and dashboards read (one row per
-- district and hour instead of one per device and hour). Devices are attributed to the
-- district they are registered in when the hour is materialized.
-- The plain variant (sql/plain/004_district_rollups.sql) builds the same views.

CREATE MATERIALIZED VIEW manhole_district_hourly
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', r.ts) AS bucket, d.district,
       count(*) AS n,
       max(tilt_deg) AS max_tilt_deg,
       avg(tilt_deg) AS avg_tilt_deg,
       count(*) FILTER (WHERE cover_open) AS open_count,
       min(water_distance_m) AS min_water_distance_m,
       max(ch4_pct_lel) AS max_ch4_pct_lel,
       min(battery_v) AS min_battery_v
FROM manhole_readings r JOIN devices d ON d.device_id = r.device_id
GROUP BY 1, 2
WITH NO DATA;
SELECT add_continuous_aggregate_policy('manhole_district_hourly',
    start_offset => INTERVAL '4 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '15 minutes');

CREATE MATERIALIZED VIEW waterlog_district_hourly
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', r.ts) AS bucket, d.district,
       count(*) AS n,
       max(depth_cm) AS max_depth_cm,
       avg(depth_cm) AS avg_depth_cm,
       sum(rain_mm) AS rain_mm,
       max(rain_intensity_mm_h) AS max_rain_intensity_mm_h
FROM waterlog_readings r JOIN devices d ON d.device_id = r.device_id
GROUP BY 1, 2
WITH NO DATA;
SELECT add_continuous_aggregate_policy('waterlog_district_hourly',
    start_offset => INTERVAL '4 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '15 minutes');

CREATE MATERIALIZED VIEW streetlight_district_hourly
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', r.ts) AS bucket, d.district,
       count(*) AS n,
       count(*) FILTER (WHERE power_state IN ('on', 'low')) AS on_count,
       avg(active_power_w) AS avg_active_power_w,
       max(active_power_w) AS max_active_power_w,
       min(supply_voltage_v) AS min_supply_voltage_v,
       max(supply_voltage_v) AS max_supply_voltage_v,
       avg(power_factor) AS avg_power_factor
FROM streetlight_readings r JOIN devices d ON d.device_id = r.device_id
GROUP BY 1, 2
WITH NO DATA;
SELECT add_continuous_aggregate_policy('streetlight_district_hourly',
    start_offset => INTERVAL '4 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '15 minutes');

CREATE MATERIALIZED VIEW watermeter_district_hourly
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', r.ts) AS bucket, d.district,
       count(*) AS n,
       avg(flow_m3_h) AS avg_flow_m3_h,
       min(flow_m3_h) AS min_flow_m3_h,
       max(flow_m3_h) AS max_flow_m3_h,
       avg(pressure_mpa) AS avg_pressure_mpa,
       min(pressure_mpa) AS min_pressure_mpa
FROM watermeter_readings r JOIN devices d ON d.device_id = r.device_id
GROUP BY 1, 2
WITH NO DATA;
SELECT add_continuous_aggregate_policy('watermeter_district_hourly',
    start_offset => INTERVAL '4 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '15 minutes');
