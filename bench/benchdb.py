"""The benchmarks' own PostgreSQL databases: dropped and created anew for every run."""

from urllib.parse import urlparse


def _bench_name_and_admin_url(url: str) -> tuple[str, str]:
    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    if not name.startswith("portal_bench"):
        raise SystemExit(
            f"refusing to drop {name!r}: the benchmark database's name must start with portal_bench"
        )
    return name, parsed._replace(path="/postgres").geturl()


def recreate_database(url: str) -> None:
    """Start from an empty database of the benchmark's own: every run measures the same thing.

    Refuses any name that does not start with portal_bench, so a mistyped URL never
    drops a real database.
    """
    import psycopg

    name, admin = _bench_name_and_admin_url(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    """Drop the benchmark's database (a large one is not worth keeping on a shared disk)."""
    import psycopg

    name, admin = _bench_name_and_admin_url(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
