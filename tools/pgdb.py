"""Throwaway PostgreSQL databases for tests and benchmarks: one per service,
named after a run id, dropped afterwards.

    PG_ADMIN_URL (default postgresql://postgres@127.0.0.1:5432/test) is where
    CREATE/DROP DATABASE are sent; the new databases live on the same server.
"""
from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

ADMIN_URL = os.environ.get("PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _admin():
    import psycopg2
    conn = psycopg2.connect(ADMIN_URL, connect_timeout=3)
    conn.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
    return conn


def reachable() -> str | None:
    """None if the server answers, else why not."""
    try:
        _admin().close()
        return None
    except Exception as exc:  # any failure means: not usable here
        return f"no PostgreSQL at {ADMIN_URL}: {str(exc).strip().splitlines()[0]}"


def url_for(name: str) -> str:
    parts = urlsplit(ADMIN_URL)
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
