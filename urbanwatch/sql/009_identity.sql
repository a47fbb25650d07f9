-- People and machines on the API (issue #9, docs/security.md): accounts with roles, API keys
-- for integrators, rotating refresh tokens and the login attempts that rate-limit sign-in.
-- Only hashes of secrets are stored: argon2id for passwords, SHA-256 for the random
-- 256-bit API keys and refresh tokens (a fast hash is enough for a secret nobody can guess,
-- and it lets a key be found by its hash).

CREATE TABLE IF NOT EXISTS users (
    id            bigserial PRIMARY KEY,
    username      text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    display_name  text,
    role          text NOT NULL CHECK (role IN ('viewer', 'crew', 'operator', 'admin')),
    unit          text,                -- the unit whose alerts a crew works (城管局, 水务局, …)
    password_hash text NOT NULL,       -- argon2id, PHC string
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_crew_has_unit CHECK (role <> 'crew' OR unit IS NOT NULL)
);

CREATE TABLE IF NOT EXISTS api_keys (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9]{8,32}$'),  -- public part: key:<id>
    name        text NOT NULL,
    role        text NOT NULL CHECK (role IN ('viewer', 'crew', 'operator', 'admin')),
    unit        text,
    secret_hash bytea NOT NULL,        -- SHA-256 of the whole key
    expires_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL,         -- an audit actor
    revoked_at  timestamptz,
    last_used_at timestamptz,
    CONSTRAINT api_keys_crew_has_unit CHECK (role <> 'crew' OR unit IS NOT NULL)
);

-- One row per refresh token; each refresh revokes the one used and issues the next. A revoked
-- token presented again revokes every token of its user (a stolen, replayed token).
CREATE TABLE IF NOT EXISTS refresh_tokens (
    id          bigserial PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id),
    token_hash  bytea NOT NULL UNIQUE,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    client      text
);
CREATE INDEX IF NOT EXISTS refresh_tokens_user_idx ON refresh_tokens (user_id) WHERE revoked_at IS NULL;

-- Failed sign-ins, counted per account and per client address over a window; in the
-- database so the limit holds across API workers. Old rows are pruned on each failure.
CREATE TABLE IF NOT EXISTS login_failures (
    id       bigserial PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    username text NOT NULL,
    client   text NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_username_idx ON login_failures (username, at);
CREATE INDEX IF NOT EXISTS login_failures_client_idx ON login_failures (client, at);

-- The tables above were created after 006 granted the application's role its rights; the
-- default privileges cover them where they were set, this covers the rest.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'urbanwatch_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE
            ON users, api_keys, refresh_tokens, login_failures TO urbanwatch_app;
        GRANT USAGE, SELECT
            ON SEQUENCE users_id_seq, refresh_tokens_id_seq, login_failures_id_seq
            TO urbanwatch_app;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'grants to urbanwatch_app skipped: %', SQLERRM;
END
$$;
