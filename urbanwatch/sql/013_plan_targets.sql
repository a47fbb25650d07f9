-- The plan's targets as data (issue #11): a city adapting the product edits rows, not code.
-- Seeded from urbanwatch/plan/targets.yaml by `urbanwatch targets load`; every edit keeps the
-- previous version in plan_target_history (and an audit_log entry).

CREATE TABLE IF NOT EXISTS plan_targets (
    id            text PRIMARY KEY,                  -- T1, T2a, ... (the numbering of docs/domain.md §1)
    kpi           text,                              -- urbanwatch.kpi key; NULL = not measured
    title_zh      text NOT NULL,
    title_en      text NOT NULL,
    scope         text NOT NULL CHECK (scope IN ('city', 'central', 'county', 'district')),
    district      text REFERENCES districts (code),  -- the district when scope = 'district'
    comparator    text CHECK (comparator IN ('>=', '<=')),
    target_value  double precision,
    unit          text NOT NULL DEFAULT '%',
    deadline      date,                              -- NULL = ongoing
    period_start  date,                              -- counts (points per year) count from here
    clause_ref    text NOT NULL,                     -- 三(三)4
    clause_zh     text NOT NULL,                     -- the plan's words, quoted
    lead_units    text[] NOT NULL DEFAULT '{}',      -- 牵头单位
    partner_units text[] NOT NULL DEFAULT '{}',      -- 配合单位
    note          text,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    text NOT NULL DEFAULT 'seed',
    CHECK ((scope = 'district') = (district IS NOT NULL)),
    CHECK ((comparator IS NULL) = (target_value IS NULL))
);

CREATE TABLE IF NOT EXISTS plan_target_history (
    id         bigserial PRIMARY KEY,
    target_id  text NOT NULL REFERENCES plan_targets (id),
    changed_at timestamptz NOT NULL DEFAULT now(),
    changed_by text NOT NULL,
    action     text NOT NULL CHECK (action IN ('create', 'update')),
    before     jsonb,
    after      jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS plan_target_history_target_idx
    ON plan_target_history (target_id, changed_at);

-- Daily KPI snapshots (docs/domain.md §6): enough to reproduce any past figure. One row per day,
-- KPI and scope ('city', 'central', 'county' or a district code); a late day is recomputed
-- by overwriting its row (`urbanwatch kpi snapshot --date D`).
CREATE TABLE IF NOT EXISTS kpi_daily (
    day         date NOT NULL,
    kpi         text NOT NULL,
    scope       text NOT NULL,
    value       double precision,          -- NULL = no data (denominator 0)
    numerator   double precision,
    denominator double precision,
    exclusions  jsonb NOT NULL DEFAULT '[]',
    defaults    jsonb NOT NULL DEFAULT '{}', -- configuration the formula used (docs/domain.md §7)
    note        text NOT NULL DEFAULT '',
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kpi, scope, day)
);
CREATE INDEX IF NOT EXISTS kpi_daily_day_idx ON kpi_daily (day);

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'urbanwatch_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON plan_targets, kpi_daily TO urbanwatch_app;
        GRANT SELECT, INSERT ON plan_target_history TO urbanwatch_app;
        GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO urbanwatch_app;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'grants to urbanwatch_app skipped: %', SQLERRM;
END
$$;
