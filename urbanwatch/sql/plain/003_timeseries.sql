-- Plain PostgreSQL variant (no TimescaleDB): the same tables answer the same queries.
-- * BRIN on ts: tiny, and effective because readings arrive roughly in time order;
--   autosummarize asks autovacuum to summarize each filled page range (an unsummarized
--   range matches every query, so a bulk load is followed by VACUUM ANALYZE as well).
-- * `<kind>_hourly` is a view: materialized hourly rows below a watermark, plus the live
--   aggregate of raw rows above it (what Timescale's real-time aggregation does).
-- * urbanwatch_refresh_rollups() materializes complete hours; ingest calls it on a timer
--   and `urbanwatch rollup` on demand. Late rows below the watermark are noted by a
--   statement trigger, so the next refresh recomputes their hours.
-- Buckets use date_bin with Timescale's origin (2000-01-03), so both variants agree.

CREATE TABLE IF NOT EXISTS rollup_watermarks (
    kind    text PRIMARY KEY,
    upto    timestamptz,          -- hours before this are materialized
    pending timestamptz           -- earliest late row written below `upto` since the last refresh
);

CREATE OR REPLACE FUNCTION urbanwatch_note_late_rows() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE rollup_watermarks w
    SET pending = LEAST(w.pending, n.lowest)
    FROM (SELECT min(ts) AS lowest FROM new_rows) n
    WHERE w.kind = TG_ARGV[0] AND n.lowest < w.upto;
    RETURN NULL;
END
$$;

-- Materialize every complete hour up to now() - lag, for each kind; returns rows written.
CREATE OR REPLACE FUNCTION urbanwatch_refresh_rollups(lag interval DEFAULT INTERVAL '1 hour')
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    k text; lo timestamptz; hi timestamptz; written bigint := 0; n bigint;
    origin CONSTANT timestamptz := '2000-01-03 00:00:00+00';
BEGIN
    hi := date_bin(INTERVAL '1 hour', now() - lag, origin);
    FOR k IN SELECT kind FROM rollup_watermarks ORDER BY kind FOR UPDATE LOOP
        SELECT LEAST(pending, upto) INTO lo FROM rollup_watermarks WHERE kind = k;
        IF lo IS NULL THEN
            EXECUTE format('SELECT min(ts) FROM %I', k || '_readings') INTO lo;
        END IF;
        IF lo IS NULL OR lo >= hi THEN
            CONTINUE;
        END IF;
        lo := date_bin(INTERVAL '1 hour', lo, origin);
        EXECUTE format('DELETE FROM %I WHERE bucket >= $1 AND bucket < $2', k || '_hourly_data')
            USING lo, hi;
        EXECUTE format('INSERT INTO %I SELECT * FROM %I($1, $2)', k || '_hourly_data', k || '_hourly_between')
            USING lo, hi;
        GET DIAGNOSTICS n = ROW_COUNT;
        written := written + n;
        UPDATE rollup_watermarks SET upto = GREATEST(upto, hi), pending = NULL WHERE kind = k;
    END LOOP;
    RETURN written;
END
$$;

CREATE INDEX IF NOT EXISTS manhole_readings_ts_brin ON manhole_readings USING brin (ts) WITH (autosummarize = on);

CREATE OR REPLACE FUNCTION manhole_hourly_between(lo timestamptz, hi timestamptz)
RETURNS TABLE (bucket timestamptz, device_id text, n bigint, max_tilt_deg double precision, avg_tilt_deg double precision, open_count bigint, min_water_distance_m double precision, max_ch4_pct_lel double precision, max_h2s_ppm double precision, max_co_ppm double precision, min_o2_pct_vol double precision, min_battery_v double precision)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- EXECUTE plans with the actual bounds, so the view's short live tail uses the
    -- BRIN index (a SQL function called from the view is not inlined, and its
    -- generic plan scanned the whole table: 290 ms instead of a few).
    RETURN QUERY EXECUTE $q$
SELECT date_bin(INTERVAL '1 hour', ts, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket, device_id,
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
WHERE ts >= $1 AND ts < $2
GROUP BY 1, 2
$q$ USING lo, hi;
END
$$;

CREATE TABLE IF NOT EXISTS manhole_hourly_data AS SELECT * FROM manhole_hourly_between(NULL, NULL) WITH NO DATA;
CREATE UNIQUE INDEX IF NOT EXISTS manhole_hourly_data_key ON manhole_hourly_data (device_id, bucket);
CREATE INDEX IF NOT EXISTS manhole_hourly_data_bucket_idx ON manhole_hourly_data (bucket);
INSERT INTO rollup_watermarks (kind) VALUES ('manhole') ON CONFLICT DO NOTHING;

CREATE OR REPLACE VIEW manhole_hourly AS
SELECT * FROM manhole_hourly_data
WHERE bucket < COALESCE((SELECT upto FROM rollup_watermarks WHERE kind = 'manhole'), '-infinity')
UNION ALL
SELECT * FROM manhole_hourly_between(
    COALESCE((SELECT upto FROM rollup_watermarks WHERE kind = 'manhole'), '-infinity'), 'infinity');

CREATE OR REPLACE TRIGGER manhole_readings_note_late
    AFTER INSERT ON manhole_readings REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION urbanwatch_note_late_rows('manhole');

CREATE INDEX IF NOT EXISTS waterlog_readings_ts_brin ON waterlog_readings USING brin (ts) WITH (autosummarize = on);

CREATE OR REPLACE FUNCTION waterlog_hourly_between(lo timestamptz, hi timestamptz)
RETURNS TABLE (bucket timestamptz, device_id text, n bigint, max_depth_cm double precision, avg_depth_cm double precision, rain_mm double precision, max_rain_intensity_mm_h double precision)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- EXECUTE plans with the actual bounds, so the view's short live tail uses the
    -- BRIN index (a SQL function called from the view is not inlined, and its
    -- generic plan scanned the whole table: 290 ms instead of a few).
    RETURN QUERY EXECUTE $q$
SELECT date_bin(INTERVAL '1 hour', ts, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket, device_id,
       count(*) AS n,
       max(depth_cm) AS max_depth_cm,
       avg(depth_cm) AS avg_depth_cm,
       sum(rain_mm) AS rain_mm,
       max(rain_intensity_mm_h) AS max_rain_intensity_mm_h
FROM waterlog_readings
WHERE ts >= $1 AND ts < $2
GROUP BY 1, 2
$q$ USING lo, hi;
END
$$;

CREATE TABLE IF NOT EXISTS waterlog_hourly_data AS SELECT * FROM waterlog_hourly_between(NULL, NULL) WITH NO DATA;
CREATE UNIQUE INDEX IF NOT EXISTS waterlog_hourly_data_key ON waterlog_hourly_data (device_id, bucket);
CREATE INDEX IF NOT EXISTS waterlog_hourly_data_bucket_idx ON waterlog_hourly_data (bucket);
INSERT INTO rollup_watermarks (kind) VALUES ('waterlog') ON CONFLICT DO NOTHING;

CREATE OR REPLACE VIEW waterlog_hourly AS
SELECT * FROM waterlog_hourly_data
WHERE bucket < COALESCE((SELECT upto FROM rollup_watermarks WHERE kind = 'waterlog'), '-infinity')
UNION ALL
SELECT * FROM waterlog_hourly_between(
    COALESCE((SELECT upto FROM rollup_watermarks WHERE kind = 'waterlog'), '-infinity'), 'infinity');

CREATE OR REPLACE TRIGGER waterlog_readings_note_late
    AFTER INSERT ON waterlog_readings REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION urbanwatch_note_late_rows('waterlog');

CREATE INDEX IF NOT EXISTS streetlight_readings_ts_brin ON streetlight_readings USING brin (ts) WITH (autosummarize = on);

CREATE OR REPLACE FUNCTION streetlight_hourly_between(lo timestamptz, hi timestamptz)
RETURNS TABLE (bucket timestamptz, device_id text, n bigint, on_count bigint, avg_active_power_w double precision, max_active_power_w double precision, min_supply_voltage_v double precision, max_supply_voltage_v double precision, avg_power_factor double precision, max_active_energy_kwh double precision)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- EXECUTE plans with the actual bounds, so the view's short live tail uses the
    -- BRIN index (a SQL function called from the view is not inlined, and its
    -- generic plan scanned the whole table: 290 ms instead of a few).
    RETURN QUERY EXECUTE $q$
SELECT date_bin(INTERVAL '1 hour', ts, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket, device_id,
       count(*) AS n,
       count(*) FILTER (WHERE power_state IN ('on', 'low')) AS on_count,
       avg(active_power_w) AS avg_active_power_w,
       max(active_power_w) AS max_active_power_w,
       min(supply_voltage_v) AS min_supply_voltage_v,
       max(supply_voltage_v) AS max_supply_voltage_v,
       avg(power_factor) AS avg_power_factor,
       max(active_energy_kwh) AS max_active_energy_kwh
FROM streetlight_readings
WHERE ts >= $1 AND ts < $2
GROUP BY 1, 2
$q$ USING lo, hi;
END
$$;

CREATE TABLE IF NOT EXISTS streetlight_hourly_data AS SELECT * FROM streetlight_hourly_between(NULL, NULL) WITH NO DATA;
CREATE UNIQUE INDEX IF NOT EXISTS streetlight_hourly_data_key ON streetlight_hourly_data (device_id, bucket);
CREATE INDEX IF NOT EXISTS streetlight_hourly_data_bucket_idx ON streetlight_hourly_data (bucket);
INSERT INTO rollup_watermarks (kind) VALUES ('streetlight') ON CONFLICT DO NOTHING;

CREATE OR REPLACE VIEW streetlight_hourly AS
SELECT * FROM streetlight_hourly_data
WHERE bucket < COALESCE((SELECT upto FROM rollup_watermarks WHERE kind = 'streetlight'), '-infinity')
UNION ALL
SELECT * FROM streetlight_hourly_between(
    COALESCE((SELECT upto FROM rollup_watermarks WHERE kind = 'streetlight'), '-infinity'), 'infinity');

CREATE OR REPLACE TRIGGER streetlight_readings_note_late
    AFTER INSERT ON streetlight_readings REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION urbanwatch_note_late_rows('streetlight');

CREATE INDEX IF NOT EXISTS watermeter_readings_ts_brin ON watermeter_readings USING brin (ts) WITH (autosummarize = on);

CREATE OR REPLACE FUNCTION watermeter_hourly_between(lo timestamptz, hi timestamptz)
RETURNS TABLE (bucket timestamptz, device_id text, n bigint, avg_flow_m3_h double precision, min_flow_m3_h double precision, max_flow_m3_h double precision, min_fwd_total_m3 double precision, max_fwd_total_m3 double precision, avg_pressure_mpa double precision, min_pressure_mpa double precision)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- EXECUTE plans with the actual bounds, so the view's short live tail uses the
    -- BRIN index (a SQL function called from the view is not inlined, and its
    -- generic plan scanned the whole table: 290 ms instead of a few).
    RETURN QUERY EXECUTE $q$
SELECT date_bin(INTERVAL '1 hour', ts, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket, device_id,
       count(*) AS n,
       avg(flow_m3_h) AS avg_flow_m3_h,
       min(flow_m3_h) AS min_flow_m3_h,
       max(flow_m3_h) AS max_flow_m3_h,
       min(fwd_total_m3) AS min_fwd_total_m3,
       max(fwd_total_m3) AS max_fwd_total_m3,
       avg(pressure_mpa) AS avg_pressure_mpa,
       min(pressure_mpa) AS min_pressure_mpa
FROM watermeter_readings
WHERE ts >= $1 AND ts < $2
GROUP BY 1, 2
$q$ USING lo, hi;
END
$$;

CREATE TABLE IF NOT EXISTS watermeter_hourly_data AS SELECT * FROM watermeter_hourly_between(NULL, NULL) WITH NO DATA;
CREATE UNIQUE INDEX IF NOT EXISTS watermeter_hourly_data_key ON watermeter_hourly_data (device_id, bucket);
CREATE INDEX IF NOT EXISTS watermeter_hourly_data_bucket_idx ON watermeter_hourly_data (bucket);
INSERT INTO rollup_watermarks (kind) VALUES ('watermeter') ON CONFLICT DO NOTHING;

CREATE OR REPLACE VIEW watermeter_hourly AS
SELECT * FROM watermeter_hourly_data
WHERE bucket < COALESCE((SELECT upto FROM rollup_watermarks WHERE kind = 'watermeter'), '-infinity')
UNION ALL
SELECT * FROM watermeter_hourly_between(
    COALESCE((SELECT upto FROM rollup_watermarks WHERE kind = 'watermeter'), '-infinity'), 'infinity');

CREATE OR REPLACE TRIGGER watermeter_readings_note_late
    AFTER INSERT ON watermeter_readings REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION urbanwatch_note_late_rows('watermeter');
