#!/bin/sh
# First start of the compose database only (docker-entrypoint-initdb.d): the login Grafana
# uses, a member of urbanwatch_grafana, the read-only role migration 017 grants to.
set -eu
: "${GRAFANA_DB_PASSWORD:?set GRAFANA_DB_PASSWORD in .env}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v pw="$GRAFANA_DB_PASSWORD" -v login="${GRAFANA_DB_USER:-grafana}" <<'SQL'
SELECT 'CREATE ROLE urbanwatch_grafana NOLOGIN'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'urbanwatch_grafana') \gexec
CREATE ROLE :"login" LOGIN PASSWORD :'pw' IN ROLE urbanwatch_grafana;
SQL
