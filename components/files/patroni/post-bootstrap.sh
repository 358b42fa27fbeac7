#!/bin/sh
# Patroni's post_bootstrap hook (patroni.yml): runs once, on the member that initialises
# the cluster, right after initdb. Patroni passes a libpq connection string for the
# superuser as the only argument and the superuser's password in PGPASSFILE.
# Creates the application user @{app_user} and its database @{database}. The application
# password is read by psql itself from the AI_INFRA_APP_PASSWORD env (the Secret), so it
# never appears on a command line; statement logging is off for this session. Idempotent.
set -eu
if [ -z "${AI_INFRA_APP_PASSWORD:-}" ]; then
    echo "post-bootstrap: AI_INFRA_APP_PASSWORD is not set" >&2
    exit 1
fi
psql "$1" --no-psqlrc --quiet -v ON_ERROR_STOP=1 <<'SQL'
SET log_statement = 'none';
SET log_min_duration_statement = -1;
\getenv app_password AI_INFRA_APP_PASSWORD
SELECT format('CREATE ROLE %I LOGIN', '@{app_user}')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '@{app_user}')\gexec
SELECT format('ALTER ROLE %I PASSWORD %L', '@{app_user}', :'app_password')\gexec
SELECT format('CREATE DATABASE %I OWNER %I', '@{database}', '@{app_user}')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '@{database}')\gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', '@{database}')\gexec
SELECT format('GRANT ALL ON DATABASE %I TO %I', '@{database}', '@{app_user}')\gexec
SQL
echo "post-bootstrap: user @{app_user} and database @{database} are ready"
