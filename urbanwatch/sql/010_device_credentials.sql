-- Broker credentials (issue #9, docs/security-devices.md): one MQTT account per device,
-- gateway and service. Only the password's hash is stored, in Mosquitto's own PBKDF2-SHA512
-- form ($7$...), so `urbanwatch broker sync` can write the broker's password file from here
-- without ever holding a password. A revoked account keeps its row (who had access, until
-- when) with no hash; issuing again gives it a new password.

CREATE TABLE IF NOT EXISTS device_credentials (
    username      text PRIMARY KEY,      -- device/<id>, gateway/<id>, service/<name> (':' as %3A)
    principal     text NOT NULL CHECK (principal IN ('device', 'gateway', 'service')),
    principal_id  text NOT NULL,
    password_hash text CHECK (password_hash ~ '^\$7\$[0-9]+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$'),
    issued_at     timestamptz NOT NULL DEFAULT now(),
    rotated_at    timestamptz,
    revoked_at    timestamptz,
    UNIQUE (principal, principal_id),
    CHECK ((revoked_at IS NULL) = (password_hash IS NOT NULL))
);

GRANT SELECT, INSERT, UPDATE ON device_credentials TO urbanwatch_app;
