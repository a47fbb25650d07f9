-- What the long-range panels of the manhole and water boards read instead of every device's
-- hours (issue #12: <= 500 ms per panel over 90 days of the city; docs/dashboards.md "How the
-- panels query"). The TimescaleDB variant (timescale/031_panel_rollups.sql) builds the same.
--
-- 1. 井盖 overflow and gas device-hours (dashboards/manhole.py events_sql): a partial index
--    over exactly the panel's condition (docs/domain.md §2.3: water within 0.5 m of the
--    cover, CH4 >= 10 % LEL, H2S >= 7 ppm, CO >= 17 ppm, O2 < 19.5 %), so the panel reads
--    the event device-hours alone instead of 30k devices × hours. The panel's WHERE must
--    imply this predicate (same columns, operators and constants) or the planner ignores
--    the index: tests/test_dashboards_rollups.py checks the plan uses it. It holds every
--    column the panel shows, so the scan reads no table pages (an index-only scan once
--    autovacuum has marked the pages visible): 2,880 event hours in 1 ms instead of 111 ms
--    of scattered page reads on the bench's city fill.
CREATE INDEX IF NOT EXISTS manhole_hourly_data_events_idx ON manhole_hourly_data (bucket)
    INCLUDE (device_id, min_water_distance_m, max_ch4_pct_lel, max_h2s_ppm, max_co_ppm,
             min_o2_pct_vol)
    WHERE min_water_distance_m <= 0.5 OR max_ch4_pct_lel >= 10 OR max_h2s_ppm >= 7
       OR max_co_ppm >= 17 OR min_o2_pct_vol < 19.5;

-- 2. 供水 lowest pressure per DMA (dashboards/water.py pressure_sql): an hourly rollup per
--    district and DMA (a meter's `dma_id` attribute; NULL for meters without one), made
--    from the per-meter hourly rows whenever urbanwatch_refresh_rollups() rewrites them (a
--    statement trigger on watermeter_hourly_data recomputes the hours it touched), plus the
--    live aggregate above the watermark like the other rollups. A meter is attributed to
--    the district and DMA it is registered in when its hour is materialized. The minimum
--    of the meters' hourly minima is the readings' minimum, and n the readings' count.
CREATE TABLE IF NOT EXISTS watermeter_dma_hourly_data (
    bucket           timestamptz NOT NULL,
    district         text NOT NULL,
    dma_id           text,
    n                bigint NOT NULL,
    min_pressure_mpa double precision
);
CREATE UNIQUE INDEX IF NOT EXISTS watermeter_dma_hourly_data_key
    ON watermeter_dma_hourly_data (district, dma_id, bucket) NULLS NOT DISTINCT;
CREATE INDEX IF NOT EXISTS watermeter_dma_hourly_data_bucket_idx
    ON watermeter_dma_hourly_data (bucket);

-- 3. 供水 DMA net inflow and minimum night flow (dashboards/water.py inflow_sql,
--    night_flow_sql): the hourly rows of the DMA boundary meters only (`meter_role` inlet or
--    outlet: a few per DMA, ~4 % of the meters), with the district, DMA and role they had
--    when the hour was materialized, kept by the same trigger.
CREATE TABLE IF NOT EXISTS watermeter_boundary_hourly_data (
    bucket        timestamptz NOT NULL,
    device_id     text NOT NULL,
    district      text NOT NULL,
    dma_id        text,
    meter_role    text NOT NULL,
    n             bigint NOT NULL,
    avg_flow_m3_h double precision
);
CREATE UNIQUE INDEX IF NOT EXISTS watermeter_boundary_hourly_data_key
    ON watermeter_boundary_hourly_data (device_id, bucket);
CREATE INDEX IF NOT EXISTS watermeter_boundary_hourly_data_bucket_idx
    ON watermeter_boundary_hourly_data (bucket);

CREATE OR REPLACE FUNCTION watermeter_dma_hourly_recompute() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM watermeter_dma_hourly_data t
        USING (SELECT DISTINCT bucket FROM old_rows) o WHERE t.bucket = o.bucket;
        DELETE FROM watermeter_boundary_hourly_data t
        USING (SELECT DISTINCT bucket FROM old_rows) o WHERE t.bucket = o.bucket;
        RETURN NULL;
    END IF;
    DELETE FROM watermeter_dma_hourly_data t
    USING (SELECT DISTINCT bucket FROM new_rows) o WHERE t.bucket = o.bucket;
    INSERT INTO watermeter_dma_hourly_data
    SELECT h.bucket, d.district, d.attrs->>'dma_id', sum(h.n)::bigint, min(h.min_pressure_mpa)
    FROM watermeter_hourly_data h JOIN devices d ON d.device_id = h.device_id
    WHERE h.bucket IN (SELECT DISTINCT bucket FROM new_rows)
    GROUP BY 1, 2, 3;
    DELETE FROM watermeter_boundary_hourly_data t
    USING (SELECT DISTINCT bucket FROM new_rows) o WHERE t.bucket = o.bucket;
    INSERT INTO watermeter_boundary_hourly_data
    SELECT h.bucket, h.device_id, d.district, d.attrs->>'dma_id', d.attrs->>'meter_role', h.n,
           h.avg_flow_m3_h
    FROM watermeter_hourly_data h JOIN devices d ON d.device_id = h.device_id
    WHERE h.bucket IN (SELECT DISTINCT bucket FROM new_rows)
      AND d.attrs->>'meter_role' IN ('inlet', 'outlet');
    RETURN NULL;
END
$$;

INSERT INTO watermeter_dma_hourly_data
SELECT h.bucket, d.district, d.attrs->>'dma_id', sum(h.n)::bigint, min(h.min_pressure_mpa)
FROM watermeter_hourly_data h JOIN devices d ON d.device_id = h.device_id
GROUP BY 1, 2, 3
ON CONFLICT DO NOTHING;
INSERT INTO watermeter_boundary_hourly_data
SELECT h.bucket, h.device_id, d.district, d.attrs->>'dma_id', d.attrs->>'meter_role', h.n,
       h.avg_flow_m3_h
FROM watermeter_hourly_data h JOIN devices d ON d.device_id = h.device_id
WHERE d.attrs->>'meter_role' IN ('inlet', 'outlet')
ON CONFLICT DO NOTHING;

CREATE OR REPLACE TRIGGER watermeter_hourly_data_dma_insert
    AFTER INSERT ON watermeter_hourly_data REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION watermeter_dma_hourly_recompute();
CREATE OR REPLACE TRIGGER watermeter_hourly_data_dma_delete
    AFTER DELETE ON watermeter_hourly_data REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION watermeter_dma_hourly_recompute();

CREATE OR REPLACE VIEW watermeter_dma_hourly AS
SELECT * FROM watermeter_dma_hourly_data
WHERE bucket < COALESCE((SELECT upto FROM rollup_watermarks WHERE kind = 'watermeter'), '-infinity')
UNION ALL
SELECT h.bucket, d.district, d.attrs->>'dma_id', sum(h.n)::bigint, min(h.min_pressure_mpa)
FROM watermeter_hourly_between(
    COALESCE((SELECT upto FROM rollup_watermarks WHERE kind = 'watermeter'), '-infinity'),
    'infinity') h
JOIN devices d ON d.device_id = h.device_id
GROUP BY 1, 2, 3;

CREATE OR REPLACE VIEW watermeter_boundary_hourly AS
SELECT * FROM watermeter_boundary_hourly_data
WHERE bucket < COALESCE((SELECT upto FROM rollup_watermarks WHERE kind = 'watermeter'), '-infinity')
UNION ALL
SELECT h.bucket, h.device_id, d.district, d.attrs->>'dma_id', d.attrs->>'meter_role', h.n,
       h.avg_flow_m3_h
FROM watermeter_hourly_between(
    COALESCE((SELECT upto FROM rollup_watermarks WHERE kind = 'watermeter'), '-infinity'),
    'infinity') h
JOIN devices d ON d.device_id = h.device_id
WHERE d.attrs->>'meter_role' IN ('inlet', 'outlet');

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'urbanwatch_grafana') THEN
        GRANT SELECT ON watermeter_dma_hourly, watermeter_boundary_hourly TO urbanwatch_grafana;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'urbanwatch_grafana not granted the 031 rollups: %', SQLERRM;
END
$$;
