-- Ingest counts per arrival minute (issue #12, docs/dashboards.md "Ingest health"): the live
-- board's ingest rate and lag read these instead of scanning six hours of raw readings.
-- Written by ingest (ingest/store.py) in the transaction that stores the batch: one upsert
-- per batch, one row per (arrival minute, kind) the batch touched, added to what is there.
-- So the counts are exactly what was committed: a batch rolled back adds nothing, a
-- redelivered reading the (device_id, ts) key drops is not counted again, and a restarted
-- worker carries on adding to its rows. Each worker writes its own rows (`worker`: its
-- client id), so workers never wait on each other's row locks; the panels add them up.
-- Ingest deletes rows older than 14 days (ingest/store.py MINUTES_KEEP).
CREATE TABLE IF NOT EXISTS ingest_minutes (
    minute       timestamptz NOT NULL,          -- arrival (received_at) truncated to the minute
    kind         text NOT NULL,                 -- the readings' kind; '' for dead letters
    worker       text NOT NULL,                 -- the ingest worker's client id
    readings     bigint NOT NULL DEFAULT 0,     -- readings stored (duplicates not counted)
    late         bigint NOT NULL DEFAULT 0,     -- of which measured over 5 min before arrival
    dead_letters bigint NOT NULL DEFAULT 0,     -- dead letters stored (kind '')
    -- received_at − ts of the readings, counted per bucket: lag_hist[i] counts lags up to
    -- ingest_lag_bounds()[i] seconds (above the previous bound); the last element counts
    -- lags above the last bound. A histogram, unlike a percentile, adds up across batches
    -- and workers.
    lag_hist     integer[] NOT NULL,
    lag_max      double precision,              -- seconds; NULL with no readings
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (minute, kind, worker)
);

-- The upper bounds (seconds) of lag_hist's buckets, for the panels (ingest/stats.py
-- LAG_BOUNDS_S holds the same; tests/test_ingest_minutes.py checks they agree). The last
-- bucket has no bound: 'Infinity' stands for it.
CREATE OR REPLACE FUNCTION ingest_lag_bounds() RETURNS double precision[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ARRAY[0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600,
                 'Infinity']::double precision[]
$$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'urbanwatch_grafana') THEN
        RAISE NOTICE 'urbanwatch_grafana role absent (migration 017 skipped it): no grants';
        RETURN;
    END IF;
    GRANT SELECT ON ingest_minutes TO urbanwatch_grafana;
    GRANT EXECUTE ON FUNCTION ingest_lag_bounds() TO urbanwatch_grafana;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'urbanwatch_grafana grants skipped (the migrating role may not grant): %',
        SQLERRM;
END
$$;
