"""Destinations for the standalone sync: DuckDB and Postgres."""
