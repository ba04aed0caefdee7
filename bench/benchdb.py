"""The benchmarks' own PostgreSQL databases: dropped and created anew for every run."""

from urllib.parse import urlparse


def recreate_database(url: str) -> None:
    """Start from an empty database of the benchmark's own: every run measures the same thing.

    Refuses any name that does not start with portal_bench, so a mistyped URL never
    drops a real database.
    """
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    if not name.startswith("portal_bench"):
        raise SystemExit(
            f"refusing to drop {name!r}: the benchmark database's name must start with portal_bench"
        )
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
