"""PostgreSQL databases for tests, benchmarks and `make run PG=1`: one per
service, made on the server PG_ADMIN_URL names (read at each call).

    PG_ADMIN_URL is where CREATE/DROP DATABASE are sent; the new databases live on
    the same server. The test session and `make run PG=1` set it to the embedded
    server they start (tools.pgserver) unless you set it to a server of yours.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit


def admin_url() -> str:
    return os.environ.get("PG_ADMIN_URL", "")


def _admin():
    import psycopg2

    if not admin_url():
        raise RuntimeError("PG_ADMIN_URL is not set")
    conn = psycopg2.connect(admin_url(), connect_timeout=3)
    conn.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
    return conn


def reachable() -> str | None:
    """None if the server answers, else why not."""
    try:
        _admin().close()
        return None
    except Exception as exc:  # any failure means: not usable here
        return f"no PostgreSQL at {admin_url() or '(PG_ADMIN_URL unset)'}: {str(exc).strip().splitlines()[0]}"


def url_for(name: str) -> str:
    parts = urlsplit(admin_url())
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


def _each(sql: str, run: str, services) -> None:
    """Runs `sql` (with {name}) once per service database."""
    conn = _admin()
    try:
        with conn.cursor() as cur:
            for s in services:
                cur.execute(sql.format(name=f"br_{run}_{s}"))
    finally:
        conn.close()


def create(run: str, services) -> dict[str, str]:
    """Creates br_<run>_<service> for each service; returns their DATABASE_URLs."""
    _each('CREATE DATABASE "{name}"', run, services)
    return {s: url_for(f"br_{run}_{s}") for s in services}


def drop(run: str, services) -> None:
    # FORCE: a killed service may have left a backend connected.
    _each('DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', run, services)


def ensure(names: dict[str, str]) -> dict[str, str]:
    """Creates each database of {service: database name} that does not exist yet (the
    data of `make run PG=1` outlives a restart); returns their DATABASE_URLs."""
    conn = _admin()
    try:
        with conn.cursor() as cur:
            for name in names.values():
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
    return {s: url_for(name) for s, name in names.items()}
