-- Readings: one table per device kind (docs/architecture.md says why).
-- Columns mirror urbanwatch/models.py; tests/test_schema.py keeps the two in step.
-- (device_id, ts) is unique, so a redelivered MQTT message adds no row.

CREATE TABLE IF NOT EXISTS manhole_readings (
    ts          timestamptz NOT NULL,
    device_id   text NOT NULL,
    received_at timestamptz NOT NULL,
    msg_type text,
    tilt_deg double precision,
    tilt_baseline_deg double precision,
    cover_open boolean,
    water_distance_m double precision,
    water_level_m double precision,
    water_over_limit boolean,
    vibration_events integer,
    ch4_pct_lel double precision,
    h2s_ppm double precision,
    co_ppm double precision,
    o2_pct_vol double precision,
    temp_c double precision,
    battery_v double precision,
    battery_pct double precision,
    rsrp_dbm double precision,
    snr_db double precision,
    extra       jsonb  -- fields outside the contract, kept as sent
);
CREATE UNIQUE INDEX IF NOT EXISTS manhole_readings_device_ts_key ON manhole_readings (device_id, ts DESC);

CREATE TABLE IF NOT EXISTS waterlog_readings (
    ts          timestamptz NOT NULL,
    device_id   text NOT NULL,
    received_at timestamptz NOT NULL,
    depth_cm double precision,
    water_present boolean,
    rain_mm double precision,
    rain_intensity_mm_h double precision,
    temp_c double precision,
    battery_v double precision,
    battery_pct double precision,
    rsrp_dbm double precision,
    extra       jsonb  -- fields outside the contract, kept as sent
);
CREATE UNIQUE INDEX IF NOT EXISTS waterlog_readings_device_ts_key ON waterlog_readings (device_id, ts DESC);

CREATE TABLE IF NOT EXISTS streetlight_readings (
    ts          timestamptz NOT NULL,
    device_id   text NOT NULL,
    received_at timestamptz NOT NULL,
    power_state text,
    active_power_w double precision,
    supply_voltage_v double precision,
    supply_current_a double precision,
    power_factor double precision,
    light_state_pct double precision,
    active_energy_kwh double precision,
    lamp_operating_hours double precision,
    controller_temp_c double precision,
    leakage_current_ma double precision,
    supply_loss_count integer,
    rsrp_dbm double precision,
    extra       jsonb  -- fields outside the contract, kept as sent
);
CREATE UNIQUE INDEX IF NOT EXISTS streetlight_readings_device_ts_key ON streetlight_readings (device_id, ts DESC);

CREATE TABLE IF NOT EXISTS watermeter_readings (
    ts          timestamptz NOT NULL,
    device_id   text NOT NULL,
    received_at timestamptz NOT NULL,
    flow_m3_h double precision,
    fwd_total_m3 double precision,
    rev_total_m3 double precision,
    pressure_mpa double precision,
    battery_v double precision,
    rsrp_dbm double precision,
    extra       jsonb  -- fields outside the contract, kept as sent
);
CREATE UNIQUE INDEX IF NOT EXISTS watermeter_readings_device_ts_key ON watermeter_readings (device_id, ts DESC);
