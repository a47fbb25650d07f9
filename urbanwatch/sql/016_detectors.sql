-- Group detectors (issue #10, docs/alerts.md "Group detectors"): flooding episodes, storm
-- incidents and the nightly minimum night flow per DMA.

-- One row per flooding episode per waterlogging point (docs/domain.md §3.3 WL_EVENT). The engine
-- writes each episode as a WL_EVENT alert (updated live while open, resolved when it ends);
-- the trigger below keeps this table in step in the same transaction, so a figure here is
-- always that of the alert and its history.
CREATE TABLE IF NOT EXISTS wl_events (
    alert_id                bigint PRIMARY KEY REFERENCES alerts (id),
    device_id               text NOT NULL,
    point_id                text,
    district                text,
    started_at              timestamptz NOT NULL,
    ended_at                timestamptz,              -- depth fell below 5 cm (then held 30 min)
    open                    boolean NOT NULL,
    max_depth_cm            double precision,
    peak_at                 timestamptz,
    duration_above_15cm_min double precision,
    time_to_drain_min       double precision,         -- peak to < 5 cm
    rain_acc_event_mm       double precision,
    max_intensity_mm_h      double precision,
    storm                   text,                     -- the storm incident's subject
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS wl_events_device_idx ON wl_events (device_id, started_at);
CREATE INDEX IF NOT EXISTS wl_events_started_idx ON wl_events (started_at);

CREATE OR REPLACE FUNCTION wl_events_from_alert() RETURNS trigger AS $$
BEGIN
    IF NEW.rule_id <> 'WL_EVENT' THEN
        RETURN NEW;
    END IF;
    INSERT INTO wl_events AS w (alert_id, device_id, point_id, district, started_at, ended_at,
                                open, max_depth_cm, peak_at, duration_above_15cm_min,
                                time_to_drain_min, rain_acc_event_mm, max_intensity_mm_h,
                                storm, updated_at)
    VALUES (NEW.id, coalesce(NEW.device_id, split_part(NEW.subject, '@', 1)),
            NEW.detail ->> 'point_id', NEW.district, NEW.opened_at,
            (NEW.detail ->> 'end')::timestamptz, NEW.status <> 'resolved',
            (NEW.detail ->> 'max_depth_cm')::double precision,
            (NEW.detail ->> 'peak_at')::timestamptz,
            (NEW.detail ->> 'duration_above_15cm_min')::double precision,
            (NEW.detail ->> 'time_to_drain_min')::double precision,
            (NEW.detail ->> 'rain_acc_event_mm')::double precision,
            (NEW.detail ->> 'max_intensity_mm_h')::double precision,
            NEW.detail ->> 'storm', now())
    ON CONFLICT (alert_id) DO UPDATE SET
        ended_at = excluded.ended_at, open = excluded.open,
        max_depth_cm = excluded.max_depth_cm, peak_at = excluded.peak_at,
        duration_above_15cm_min = excluded.duration_above_15cm_min,
        time_to_drain_min = excluded.time_to_drain_min,
        rain_acc_event_mm = excluded.rain_acc_event_mm,
        max_intensity_mm_h = excluded.max_intensity_mm_h,
        storm = coalesce(excluded.storm, w.storm), updated_at = now();
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS alerts_wl_events ON alerts;
CREATE TRIGGER alerts_wl_events AFTER INSERT OR UPDATE ON alerts
    FOR EACH ROW WHEN (NEW.rule_id = 'WL_EVENT') EXECUTE FUNCTION wl_events_from_alert();

-- Storm incidents: the STORM_INCIDENT alerts with their live counts (children by parent_id).
CREATE OR REPLACE VIEW storm_incidents AS
SELECT a.id, a.subject, a.severity, a.status, a.opened_at, a.resolved_at,
       (a.detail ->> 'events')::int AS events,
       (a.detail ->> 'max_depth_cm')::double precision AS max_depth_cm,
       (SELECT count(*) FROM alerts c WHERE c.parent_id = a.id) AS children,
       (SELECT count(*) FROM alerts c WHERE c.parent_id = a.id AND c.status <> 'resolved')
           AS children_open
FROM alerts a WHERE a.rule_id = 'STORM_INCIDENT';

-- The night's minimum night flow per DMA (docs/domain.md §5.5), written by `urbanwatch alerts
-- daily`: the figure, when it occurred, the baseline it was compared with, the data
-- completeness and the rules' outcome, so every DMA_MNF_* alert can be audited.
CREATE TABLE IF NOT EXISTS dma_night_flow (
    dma_id          text NOT NULL,
    night           date NOT NULL,                -- local date of the 00:00–05:00 window
    method          text NOT NULL,                -- e.g. min of the 1-h rolling mean, 15-min buckets
    mnf_m3_h        double precision,             -- NULL when no data
    mnf_at          timestamptz,                  -- start of the minimum hour
    completeness    double precision NOT NULL,    -- buckets with data / expected (0–1)
    valid           boolean NOT NULL,             -- completeness ≥ 0.9
    baseline_m3_h   double precision,             -- p20 of the previous 14 valid nights
    baseline_nights integer NOT NULL DEFAULT 0,
    adf_m3_h        double precision,             -- the previous day's average flow
    properties      integer,
    rules           jsonb NOT NULL DEFAULT '{}',  -- rule -> fired (bool) and why
    computed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dma_id, night)
);

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'urbanwatch_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON wl_events, dma_night_flow TO urbanwatch_app;
        GRANT SELECT ON storm_incidents TO urbanwatch_app;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'grants to urbanwatch_app skipped: %', SQLERRM;
END
$$;
