-- Who changed what (issue #9, docs/security.md): every write through the API or the CLI.
-- Append-only: triggers refuse UPDATE, DELETE and TRUNCATE for every role, and the
-- application's role (urbanwatch_app) is not even granted them.

CREATE TABLE IF NOT EXISTS audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,      -- user:<name>, key:<id>, cli:<os user>@<host>, service:<name>
    actor_role  text,               -- the role the actor acted with (API), NULL elsewhere
    source      text,               -- where from: the client address (API), 'cli', a service
    action      text NOT NULL,      -- create, update, delete, import, issue, revoke, login, …
    resource    text NOT NULL,      -- device, user, api_key, device_credential, …
    resource_id text,
    before      jsonb,              -- the resource before the change (secrets removed)
    after       jsonb,              -- and after it
    detail      jsonb               -- anything else worth keeping (counts, reasons)
);
CREATE INDEX IF NOT EXISTS audit_log_at_idx ON audit_log (at);
CREATE INDEX IF NOT EXISTS audit_log_resource_idx ON audit_log (resource, resource_id, at);
CREATE INDEX IF NOT EXISTS audit_log_actor_idx ON audit_log (actor, at);

CREATE OR REPLACE FUNCTION urbanwatch_audit_is_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE OR REPLACE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION urbanwatch_audit_is_append_only();
CREATE OR REPLACE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION urbanwatch_audit_is_append_only();

-- The application's database role. Services log in as a user that is a member of it
-- (docs/security.md); the migrating role owns the schema. Creating a role needs CREATEROLE:
-- where the migrating role lacks it, the grants are skipped with a notice.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'urbanwatch_app') THEN
        CREATE ROLE urbanwatch_app NOLOGIN;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO urbanwatch_app', current_database());
    GRANT USAGE ON SCHEMA public TO urbanwatch_app;
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO urbanwatch_app;
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO urbanwatch_app;
    GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO urbanwatch_app;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public
        GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO urbanwatch_app;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO urbanwatch_app;
    REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM urbanwatch_app;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'urbanwatch_app role not set up (the migrating role lacks CREATEROLE): %', SQLERRM;
END
$$;
