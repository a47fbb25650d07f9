-- WS_FLOW_ANOMALY's expected flow (issue #10; docs/alerts.md "Expected flow and pressure"):
-- each water meter's 15-min means, so a profile refresh reads ~120 k quarter rows for its
-- 10 windows of 3 h instead of 1.8 M readings (~150 MB of table pages) at city scale
-- (1,000 meters at 1 reading/min; bench/flow_profiles.py). The TimescaleDB variant
-- (timescale/033_watermeter_quarters.sql) is a continuous aggregate of the same.
--
-- Kept with watermeter_hourly_data, as 031's per-DMA rollup is: when
-- urbanwatch_refresh_rollups() rewrites hours (DELETE then INSERT of [lo, hi)), statement
-- triggers drop the quarters of those hours and recompute them from the raw readings, so
-- late rows below the watermark reach them too. Quarters above the watermark are not here:
-- the profile query reads those windows from the raw readings (urbanwatch/queries/profiles.py).
-- Buckets are date_bin(15 min) from the epoch: the same quarters as the hourly origin's.
CREATE TABLE IF NOT EXISTS watermeter_quarter_data (
    bucket           timestamptz NOT NULL,
    device_id        text NOT NULL,
    n                bigint NOT NULL,
    avg_flow_m3_h    double precision,
    avg_pressure_mpa double precision
);
CREATE UNIQUE INDEX IF NOT EXISTS watermeter_quarter_data_key
    ON watermeter_quarter_data (bucket, device_id);

CREATE OR REPLACE FUNCTION watermeter_quarter_between(lo timestamptz, hi timestamptz)
RETURNS TABLE (bucket timestamptz, device_id text, n bigint, avg_flow_m3_h double precision,
               avg_pressure_mpa double precision)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- EXECUTE plans with the actual bounds (the BRIN index on ts), as 003's functions do.
    RETURN QUERY EXECUTE $q$
SELECT date_bin(INTERVAL '15 minutes', ts, TIMESTAMPTZ 'epoch') AS bucket, device_id,
       count(*) AS n, avg(flow_m3_h), avg(pressure_mpa)
FROM watermeter_readings
WHERE ts >= $1 AND ts < $2
GROUP BY 1, 2
$q$ USING lo, hi;
END
$$;

CREATE OR REPLACE FUNCTION watermeter_quarter_recompute() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    lo timestamptz; hi timestamptz;
BEGIN
    IF TG_OP = 'DELETE' THEN
        SELECT min(bucket), max(bucket) + INTERVAL '1 hour' INTO lo, hi FROM old_rows;
    ELSE
        SELECT min(bucket), max(bucket) + INTERVAL '1 hour' INTO lo, hi FROM new_rows;
    END IF;
    IF lo IS NULL THEN
        RETURN NULL;
    END IF;
    DELETE FROM watermeter_quarter_data WHERE bucket >= lo AND bucket < hi;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO watermeter_quarter_data
        SELECT * FROM watermeter_quarter_between(GREATEST(lo, hi - INTERVAL '35 days'), hi);
        -- kept for 35 days: the profile reads 28 days back (~110 bytes a quarter: 310 MB
        -- for 1,000 meters over 29 days, where the readings took 6.3 GB)
        -- (EXECUTE: planned with the bound, an index scan of the few old rows; the generic
        -- plan of a plpgsql statement scanned the whole table, 0.5-1 s a refresh)
        EXECUTE 'DELETE FROM watermeter_quarter_data WHERE bucket < $1'
            USING hi - INTERVAL '35 days';
    END IF;
    RETURN NULL;
END
$$;

INSERT INTO watermeter_quarter_data
SELECT * FROM watermeter_quarter_between(now() - INTERVAL '35 days',
    COALESCE((SELECT upto FROM rollup_watermarks WHERE kind = 'watermeter'), '-infinity'))
ON CONFLICT DO NOTHING;

CREATE OR REPLACE TRIGGER watermeter_hourly_data_quarter_insert
    AFTER INSERT ON watermeter_hourly_data REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION watermeter_quarter_recompute();
CREATE OR REPLACE TRIGGER watermeter_hourly_data_quarter_delete
    AFTER DELETE ON watermeter_hourly_data REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION watermeter_quarter_recompute();
