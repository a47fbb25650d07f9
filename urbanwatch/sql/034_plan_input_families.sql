-- Finer counters for the KPI value cache (urbanwatch/plan/values.py, docs/kpis.md "Cached
-- values"): one counter per ledger family instead of one for every ledger, so a hazard
-- edit no longer invalidates the lighting KPIs. Each KPI declares the families it reads
-- (KpiSpec.inputs; urbanwatch/plan/values.py FAMILIES lists the tables of each, and
-- tests/test_plan_values.py checks that this migration bumps the same family for each
-- table and that every KPI computes under a role that may read only its families).
--
-- Same mechanics as 028 (plan_input_bump: deferred constraint triggers, one bump per area
-- per committed transaction); only the area each table bumps changes. The 'ledgers' row
-- of 028 is no longer bumped by anything and is removed.
INSERT INTO plan_input_versions (area)
VALUES ('registry'), ('manhole'), ('waterlog'), ('lighting'), ('water'), ('hazards'),
       ('alerts')
ON CONFLICT (area) DO NOTHING;
DELETE FROM plan_input_versions WHERE area = 'ledgers';

DO $$
DECLARE
    pair text[];
BEGIN
    FOREACH pair SLICE 1 IN ARRAY ARRAY[
        ['devices', 'registry'], ['districts', 'registry'],
        ['manhole_covers', 'manhole'], ['manhole_defects', 'manhole'],
        ['waterlog_points', 'waterlog'],
        ['lighting_road_segments', 'lighting'], ['lighting_facilities', 'lighting'],
        ['water_dmas', 'water'], ['water_meters', 'water'], ['water_supply_years', 'water'],
        ['water_volumes', 'water'],
        ['hidden_dangers', 'hazards']]
    LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS plan_input_bump ON %I', pair[1]);
        EXECUTE format('CREATE CONSTRAINT TRIGGER plan_input_bump AFTER INSERT OR UPDATE OR '
                       'DELETE ON %I DEFERRABLE INITIALLY DEFERRED FOR EACH ROW '
                       'EXECUTE FUNCTION plan_input_bump(%L)', pair[1], pair[2]);
        EXECUTE format('DROP TRIGGER IF EXISTS plan_input_bump_truncate ON %I', pair[1]);
        EXECUTE format('CREATE TRIGGER plan_input_bump_truncate AFTER TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION plan_input_bump(%L)',
                       pair[1], pair[2]);
    END LOOP;
END
$$;
