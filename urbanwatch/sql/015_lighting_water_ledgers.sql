-- Street-lighting and water ledgers (台账, issue #11; docs/domain.md §4.4–4.5, §5.1–5.7).
-- Imported by `urbanwatch ledgers import` (urbanwatch/ledgers/lighting.py, water.py);
-- formats in docs/ledgers.md. KPIs: urbanwatch/kpi/lighting.py, water.py.

-- Road segments (道路路段), the denominator of 有路无灯: a segment with no functional lamp is
-- dark. next_segment_id continues the road, so lamps adjacent across a segment end count as
-- adjacent (有灯不亮: ≥ 2 adjacent lamps on one side out for > 24 h).
CREATE TABLE IF NOT EXISTS lighting_road_segments (
    segment_id      text PRIMARY KEY,
    district        text NOT NULL REFERENCES districts (code),
    road_name       text NOT NULL,
    road_class      text NOT NULL CHECK (road_class IN ('expressway', 'trunk', 'secondary',
                        'branch', 'residential')),
    length_m        double precision NOT NULL CHECK (length_m > 0 AND length_m < 1e6),
    next_segment_id text,
    opened_on       date,
    closed_on       date CHECK (closed_on >= opened_on),
    measured_lux    double precision CHECK (measured_lux >= 0 AND measured_lux < 1e5),
    lux_measured_on date,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Functional lighting facilities (功能性照明设施, §4.4): lamps, poles, cabinets, circuits,
-- cables, controllers. Landscape lighting is kept (is_landscape) but never counted.
CREATE TABLE IF NOT EXISTS lighting_facilities (
    facility_id          text PRIMARY KEY,
    facility_type        text NOT NULL CHECK (facility_type IN ('lamp', 'pole', 'cabinet',
                             'circuit', 'cable', 'controller')),
    district             text NOT NULL REFERENCES districts (code),
    segment_id           text REFERENCES lighting_road_segments (segment_id),
    road_side            text CHECK (road_side IN ('L', 'R', 'C')),
    position_m           double precision CHECK (position_m >= 0 AND position_m < 1e6),
    is_landscape         boolean NOT NULL DEFAULT false,
    lamp_type            text CHECK (lamp_type IN ('LED', 'HPS', 'MH', 'CFL', 'other')),
    rated_power_w        double precision CHECK (rated_power_w > 0 AND rated_power_w <= 2000),
    retrofit_on          date,               -- LED retrofit: before it, the previous lamp
    previous_lamp_type   text CHECK (previous_lamp_type IN ('LED', 'HPS', 'MH', 'CFL', 'other')),
    previous_power_w     double precision CHECK (previous_power_w > 0 AND previous_power_w <= 2000),
    device_id            text,               -- devices.device_id of its single-lamp controller
    pole_id              text,
    circuit_id           text,
    cabinet_id           text,
    part_night_off_from  time,               -- approved part-night schedule: off from ...
    part_night_off_to    time,               -- ... to (local time, may wrap midnight)
    installed_on         date,
    retired_on           date CHECK (retired_on >= installed_on),
    defect               text,               -- open inspection defect (破损, 倾斜, 缺门, ...)
    defect_found_on      date,
    defect_repaired_on   date CHECK (defect_repaired_on >= defect_found_on),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CHECK ((part_night_off_from IS NULL) = (part_night_off_to IS NULL))
);
CREATE INDEX IF NOT EXISTS lighting_facilities_district_idx
    ON lighting_facilities (district, facility_type);
CREATE INDEX IF NOT EXISTS lighting_facilities_segment_idx ON lighting_facilities (segment_id);

-- District metered areas (DMA, §5.4) with the pipe length that R2 and ILI need.
CREATE TABLE IF NOT EXISTS water_dmas (
    dma_id              text PRIMARY KEY,
    name                text,
    district            text NOT NULL REFERENCES districts (code),
    pipe_km_dn75        double precision CHECK (pipe_km_dn75 >= 0 AND pipe_km_dn75 < 1e5),
    mains_km            double precision CHECK (mains_km >= 0 AND mains_km < 1e5),
    service_connections integer CHECK (service_connections >= 0),
    private_pipe_km     double precision CHECK (private_pipe_km >= 0 AND private_pipe_km < 1e5),
    avg_pressure_m      double precision CHECK (avg_pressure_m >= 0 AND avg_pressure_m < 1000),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- A DMA's meters: inlets and outlets give the supply (Qs), customer meters the billed
-- volume, household meters (抄表到户) R1's volume, pressure points the pass rate.
CREATE TABLE IF NOT EXISTS water_meters (
    meter_id   text PRIMARY KEY,
    dma_id     text NOT NULL REFERENCES water_dmas (dma_id),
    role       text NOT NULL CHECK (role IN ('inlet', 'outlet', 'customer', 'household',
                   'pressure')),
    device_id  text,                      -- devices.device_id; empty: the meter id
    billed     boolean NOT NULL DEFAULT true, -- customer volume billed (else free, 免费)
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS water_meters_dma_idx ON water_meters (dma_id, role);

-- Volumes for a period where no meter measures them (billing system, plant records), m³.
CREATE TABLE IF NOT EXISTS water_volumes (
    dma_id       text NOT NULL REFERENCES water_dmas (dma_id),
    period_start date NOT NULL,
    period_end   date NOT NULL CHECK (period_end >= period_start), -- inclusive
    supply_m3    double precision CHECK (supply_m3 >= 0 AND supply_m3 < 1e12),
    billed_m3    double precision CHECK (billed_m3 >= 0 AND billed_m3 < 1e12),
    free_m3      double precision CHECK (free_m3 >= 0 AND free_m3 < 1e12),
    household_m3 double precision CHECK (household_m3 >= 0 AND household_m3 < 1e12),
    apparent_loss_m3 double precision CHECK (apparent_loss_m3 >= 0 AND apparent_loss_m3 < 1e12),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dma_id, period_start, period_end)
);

-- A district's supply year: the flow-weighted plant-outlet pressure (R3) and the maximum
-- frost depth (R4), per CJJ 92-2016 as revised in 2018 (§5.2).
CREATE TABLE IF NOT EXISTS water_supply_years (
    district              text NOT NULL REFERENCES districts (code),
    year                  integer NOT NULL CHECK (year BETWEEN 2000 AND 2100),
    plant_outlet_pressure_mpa double precision CHECK (plant_outlet_pressure_mpa >= 0
                              AND plant_outlet_pressure_mpa < 5),
    max_frost_depth_m     double precision CHECK (max_frost_depth_m >= 0 AND max_frost_depth_m < 10),
    pipe_km_dn75          double precision CHECK (pipe_km_dn75 >= 0 AND pipe_km_dn75 < 1e5),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (district, year)
);

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'urbanwatch_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON lighting_road_segments, lighting_facilities,
            water_dmas, water_meters, water_volumes, water_supply_years TO urbanwatch_app;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'grants to urbanwatch_app skipped: %', SQLERRM;
END
$$;
