#!/bin/bash
# Keeps one login role and one database per service, with the passwords the bookrental-db
# Secret holds now: on start and again whenever the mounted Secret changes (the kubelet
# updates a mounted Secret in place; the image's init scripts run once, on an empty data
# directory, so a rotated password would never reach the server). Like CloudNativePG's
# managed roles, reconciled from the Secret.
set -euo pipefail
# The pod's own socket (an emptyDir only this pod mounts), which the official image trusts.
SECRETS="${SECRETS:-/etc/bookrental-db}"
export PGHOST="${PGHOST:-/var/run/postgresql}" PGUSER=postgres PGDATABASE=postgres
applied=""
while true; do
  current="$(cat "$SECRETS"/*-password | sha256sum)"
  if [ "$current" != "$applied" ] && pg_isready -q; then
    psql -v ON_ERROR_STOP=1 -q \
      --set=password="$(cat "$SECRETS/postgres-password")" <<'SQL'
ALTER ROLE postgres PASSWORD :'password';
SQL
    for svc in reservation stock alert; do
      psql -v ON_ERROR_STOP=1 -q \
        --set=svc="$svc" --set=password="$(cat "$SECRETS/$svc-password")" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'svc') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'svc')\gexec
ALTER ROLE :"svc" LOGIN PASSWORD :'password';
SELECT format('CREATE DATABASE %I OWNER %I', :'svc', :'svc') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'svc')\gexec
REVOKE ALL ON DATABASE :"svc" FROM PUBLIC;
SQL
    done
    applied="$current"
    echo "roles and passwords applied"
  fi
  sleep 10
done
