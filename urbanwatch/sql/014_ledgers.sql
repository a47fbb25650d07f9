-- Ledgers (台账, issue #11): the facts the plan KPIs count. Imported from CSV / Excel by
-- `urbanwatch ledgers import` (urbanwatch/ledgers/), natural keys make a re-import idempotent,
-- every change is in audit_log with the previous value. Formats: docs/ledgers.md.

-- A ledger's 2021 baseline census, once frozen, cannot gain, lose or re-flag rows, so a rate
-- against it keeps its denominator (docs/domain.md §2.6, §3.6).
CREATE TABLE IF NOT EXISTS ledger_baselines (
    ledger    text PRIMARY KEY,
    frozen_at timestamptz NOT NULL DEFAULT now(),
    frozen_by text NOT NULL
);

CREATE OR REPLACE FUNCTION urbanwatch_baseline_frozen() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    frozen timestamptz;
BEGIN
    SELECT frozen_at INTO frozen FROM ledger_baselines WHERE ledger = TG_ARGV[0];
    IF frozen IS NULL THEN
        RETURN COALESCE(NEW, OLD);
    END IF;
    IF (TG_OP = 'INSERT' AND NEW.baseline_2021)
       OR (TG_OP = 'UPDATE' AND NEW.baseline_2021 IS DISTINCT FROM OLD.baseline_2021)
       OR (TG_OP = 'DELETE' AND OLD.baseline_2021) THEN
        RAISE EXCEPTION 'baseline_2021: the 2021 baseline of % is frozen since %; it cannot change',
            TG_ARGV[0], to_char(frozen, 'YYYY-MM-DD')
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN COALESCE(NEW, OLD);
END
$$;

-- §2.4: one cover, one number, one file (一盖一编号、一井一档案).
CREATE TABLE IF NOT EXISTS manhole_covers (
    cover_id               text PRIMARY KEY,
    district               text NOT NULL REFERENCES districts (code),
    road                   text,
    use_type               text,              -- 雨水 / 污水 / 合流 / 供水 / 燃气 / 电力 / 通信 / 热力
    owner_unit             text,              -- 权属单位
    material               text,
    load_class             text CHECK (load_class IN ('A15', 'B125', 'C250', 'D400', 'E600', 'F900')),
    installed_on           date,
    in_core_area           boolean NOT NULL DEFAULT false,
    anti_fall_required     boolean NOT NULL DEFAULT false,
    anti_fall_installed_on date,
    smart_monitor_id       text,              -- devices.device_id of its smart monitor
    lat                    double precision CHECK (lat BETWEEN -90 AND 90),
    lon                    double precision CHECK (lon BETWEEN -180 AND 180),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS manhole_covers_district_idx ON manhole_covers (district);

-- §2.5 defects; a sensor alarm opens a 'candidate' an inspector confirms or rejects.
CREATE TABLE IF NOT EXISTS manhole_defects (
    cover_id       text NOT NULL REFERENCES manhole_covers (cover_id),
    defect_type    text NOT NULL CHECK (defect_type IN ('MISSING', 'BROKEN', 'HEIGHT', 'LOOSE',
                       'DISPLACED', 'SURROUND', 'CLASS', 'NO_ANTIFALL')),
    discovered_on  date NOT NULL,
    source         text NOT NULL CHECK (source IN ('inspection', 'complaint', 'sensor')),
    status         text NOT NULL DEFAULT 'confirmed'
                   CHECK (status IN ('candidate', 'confirmed', 'rejected')),
    work_order     text,
    remediated_on  date CHECK (remediated_on >= discovered_on),
    verified_on    date CHECK (verified_on >= remediated_on),
    verified_by    text,
    baseline_2021  boolean NOT NULL DEFAULT false, -- in the frozen 2021 census
    alert_id       bigint,                         -- the sensor alert that opened it
    note           text,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cover_id, defect_type, discovered_on)
);
CREATE OR REPLACE TRIGGER manhole_defects_baseline
    BEFORE INSERT OR UPDATE OR DELETE ON manhole_defects
    FOR EACH ROW EXECUTE FUNCTION urbanwatch_baseline_frozen('manhole_defects');

-- §3.4 积水点台账; §3.5 verification by data fills verification / verified_on.
CREATE TABLE IF NOT EXISTS waterlog_points (
    point_id         text PRIMARY KEY,
    name             text NOT NULL,
    district         text NOT NULL REFERENCES districts (code),
    point_type       text,               -- 下穿/下凹立交, 低洼路段, 小区, ...
    road_class       text,
    cause            text,
    responsible_unit text,
    sensor_id        text,               -- devices.device_id of its depth sensor
    rain_gauge_id    text,               -- the gauge its rain events are read from
    measures         text,
    planned_year     integer CHECK (planned_year BETWEEN 2000 AND 2100),
    accepted_on      date,               -- 工程完工验收: the plan counts this
    verification     text NOT NULL DEFAULT 'pending'
                     CHECK (verification IN ('pending', 'verified', 'regressed')),
    verified_on      date,               -- the qualifying rain that confirmed or failed it
    verification_detail jsonb,
    baseline_2021    boolean NOT NULL DEFAULT false,
    lat              double precision CHECK (lat BETWEEN -90 AND 90),
    lon              double precision CHECK (lon BETWEEN -180 AND 180),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE OR REPLACE TRIGGER waterlog_points_baseline
    BEFORE INSERT OR UPDATE OR DELETE ON waterlog_points
    FOR EACH ROW EXECUTE FUNCTION urbanwatch_baseline_frozen('waterlog_points');

-- T9 (三(七)1 建立隐患风险点整改台账): hidden-danger points and their rectification.
CREATE TABLE IF NOT EXISTS hidden_dangers (
    hazard_id        text PRIMARY KEY,
    district         text NOT NULL REFERENCES districts (code),
    category         text NOT NULL,      -- 窨井 / 燃气 / 供水 / 排水 / 桥梁 / 房屋 / ...
    location         text,
    description      text,
    responsible_unit text,
    found_on         date NOT NULL,
    deadline         date CHECK (deadline >= found_on),
    rectified_on     date CHECK (rectified_on >= found_on),
    verified_on      date CHECK (verified_on >= rectified_on),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'urbanwatch_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE
            ON manhole_covers, manhole_defects, waterlog_points, hidden_dangers TO urbanwatch_app;
        GRANT SELECT, INSERT ON ledger_baselines TO urbanwatch_app;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'grants to urbanwatch_app skipped: %', SQLERRM;
END
$$;
