-- Grafana role, part 2 (issue #12, docs/dashboards.md): SELECT on what the plan-progress
-- board, the storm and delivery-health panels and the per-kind ledger panels read
-- (dashboards/plan.py, live.py, manhole.py, waterlog.py, streetlight.py, water.py;
-- tests/test_dashboards_sql.py runs every panel as this role).
-- Not granted: notify_outbox.message (the routed message body), notify_channels (URLs and
-- secret names), plan_target_history (who edited what), API keys, users, credentials.
-- Skipped with a notice where migration 017 could not create the role.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'urbanwatch_grafana') THEN
        RAISE NOTICE 'urbanwatch_grafana role absent (migration 017 skipped it): no grants';
        RETURN;
    END IF;
    GRANT SELECT ON plan_targets, kpi_daily,
        manhole_covers, manhole_defects, waterlog_points, lighting_road_segments,
        lighting_facilities, water_dmas, wl_events, storm_incidents, dma_night_flow
        TO urbanwatch_grafana;
    GRANT SELECT (id, event_id, alert_id, channel, status, attempts, next_attempt_at,
                  created_at, sent_at)
        ON notify_outbox TO urbanwatch_grafana;
    GRANT SELECT (id, channel, started_at, finished_at, outcome, status_code)
        ON notify_attempts TO urbanwatch_grafana;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'urbanwatch_grafana grants skipped (the migrating role may not grant): %',
        SQLERRM;
END
$$;
