"""The throw-away Postgres server of the destinations tests, shared with the front doors."""

from destinations.conftest import pg_schema_url, postgres_url

__all__ = ["pg_schema_url", "postgres_url"]
