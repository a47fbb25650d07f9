-- The read-only role Grafana's datasource logs in through (issue #12, docs/dashboards.md):
-- SELECT on exactly what the dashboards read (dashboards/ panels; tests/test_dashboards_sql.py
-- runs every panel as this role). Nothing else: no audit log, no credentials, no payload
-- bytes of dead letters, no writes. A login user is made a member of it by the deployment
-- (compose: dashboards/provisioning/db/10-grafana-login.sh).
-- Roles are cluster-wide and creating one needs CREATEROLE: where the migrating role lacks
-- it, the grants are skipped with a notice (migrate.py retries a lost CREATE ROLE race).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'urbanwatch_grafana') THEN
        CREATE ROLE urbanwatch_grafana NOLOGIN;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO urbanwatch_grafana', current_database());
    GRANT USAGE ON SCHEMA public TO urbanwatch_grafana;
    GRANT SELECT ON districts, devices, alerts, alert_events, ingest_sessions,
        manhole_readings, waterlog_readings, streetlight_readings, watermeter_readings,
        manhole_hourly, waterlog_hourly, streetlight_hourly, watermeter_hourly,
        manhole_district_hourly, waterlog_district_hourly, streetlight_district_hourly,
        watermeter_district_hourly
        TO urbanwatch_grafana;
    GRANT SELECT (id, received_at, topic, element_index, device_id, reason_code, reason)
        ON dead_letters TO urbanwatch_grafana;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'urbanwatch_grafana role not set up (the migrating role lacks CREATEROLE): %',
        SQLERRM;
END
$$;
