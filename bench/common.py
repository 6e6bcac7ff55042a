"""What the benches share: each runs against a PostgreSQL database of its own, created on demand."""

from __future__ import annotations


def ensure_database(url: str) -> None:
    """Create the database ``url`` names (postgres://…/<name>) if it does not exist yet."""
    import psycopg
    from psycopg import sql

    name = url.rsplit("/", 1)[1].split("?", 1)[0]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
