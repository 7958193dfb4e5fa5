"""Destination URLs: `duckdb:///file.duckdb` (or a bare path) and everything libpq accepts.

DuckDB: `duckdb:///relative.duckdb`, `duckdb:////absolute.duckdb` or a bare path, with `?schema=`,
`?memory_limit=` and `?threads=`; anything else is refused (so is `:memory:`, which would sync into
nothing). Postgres: any libpq URI (`postgresql://user@host:5432/db`, `postgresql:///db?host=...`)
or keyword string (`host=... dbname=...`), plus `schema`; the PG* environment variables fill in
what the URL leaves out, as for psql (libpq reads them itself). The display form never holds a
password.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from klaviyo_source.errors import ConfigError

DEFAULT_SCHEMA = "klaviyo"
DUCKDB_OPTIONS = ("schema", "memory_limit", "threads")
DEFAULT_MEMORY_LIMIT = "64MB"  # 128MB: ~55 MB more peak at 1M events, no less CPU (docs/performance.md)
DEFAULT_THREADS = 1  # 2 cost 20-25 % more CPU and wall: they contend with the read (docs/performance.md)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MEMORY = re.compile(r"^\d+(\.\d+)?\s*[KMGT]i?B$", re.IGNORECASE)
_KEYWORD_SCHEMA = re.compile(r"(^|\s)schema\s*=\s*(\S*)")


@dataclass(frozen=True)
class DestinationSpec:
    kind: str  # "duckdb" or "postgres"
    target: str  # file path or libpq connection string (may hold a password: never print it)
    schema: str
    display: str  # safe to print
    memory_limit: str = DEFAULT_MEMORY_LIMIT  # DuckDB: beyond it DuckDB spills to disk instead of growing
    threads: int = DEFAULT_THREADS  # DuckDB's worker threads


def _schema(value: str | None) -> str:
    schema = value or DEFAULT_SCHEMA
    if not _IDENTIFIER.match(schema):
        raise ConfigError(f"Invalid destination: schema {schema!r} must be letters, digits and underscores.")
    return schema


def parse_destination(url: str) -> DestinationSpec:
    """A destination URL -> DestinationSpec; ConfigError (one line, no secrets) when it is not one."""
    url = url.strip()
    if re.match(r"^postgres(ql)?://", url):
        return _postgres_uri(url)
    if re.match(r"^[A-Za-z_]+\s*=", url):  # libpq keywords: host=... dbname=...
        return _postgres_keywords(url)
    if url.startswith("duckdb://") or "://" not in url:
        return _duckdb(url)
    scheme = url.split("://", 1)[0]
    raise ConfigError(
        f"Invalid destination {scheme}://...: use duckdb:///path/to/file.duckdb or postgresql://..."
    )


def _duckdb(url: str) -> DestinationSpec:
    if url.startswith("duckdb://"):
        rest = url[len("duckdb://") :]
        path, _, query = rest.partition("?")
        path = path[1:] if path.startswith("/") else path  # duckdb:///x -> x ; duckdb:////x -> /x
    else:
        path, _, query = url.partition("?")
    if not path:
        raise ConfigError("Invalid destination: duckdb:///path/to/file.duckdb needs a file path.")
    if path == ":memory:" or path.startswith(":memory:"):
        raise ConfigError(
            "Invalid destination: an in-memory DuckDB would be thrown away when the sync ends; "
            "give a file, e.g. duckdb:///klaviyo.duckdb."
        )
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(options) - set(DUCKDB_OPTIONS))
    if unknown:
        raise ConfigError(
            f"Invalid destination: unknown option {', '.join(unknown)} in the duckdb URL "
            f"(known: {', '.join(DUCKDB_OPTIONS)})."
        )
    memory = options.get("memory_limit") or DEFAULT_MEMORY_LIMIT
    if not _MEMORY.match(memory):
        raise ConfigError(f"Invalid destination: memory_limit {memory!r} must look like 512MB or 2GB.")
    threads_text = options.get("threads") or str(DEFAULT_THREADS)
    if not threads_text.isdigit() or not 1 <= int(threads_text) <= 256:
        raise ConfigError(f"Invalid destination: threads {threads_text!r} must be a number from 1 to 256.")
    schema = _schema(options.get("schema"))
    return DestinationSpec(
        "duckdb", path, schema, f"duckdb file {path} (schema {schema})", memory, int(threads_text)
    )


def _postgres_uri(url: str) -> DestinationSpec:
    base, _, text = url.partition("?")  # not urlunsplit: it turns postgresql:///db into postgresql:/db
    query = parse_qsl(text, keep_blank_values=True)
    schema = _schema(next((v for k, v in reversed(query) if k == "schema"), None))
    rest = [(k, v) for k, v in query if k != "schema"]
    target = base + (f"?{urlencode(rest)}" if rest else "")
    return DestinationSpec("postgres", target, schema, _postgres_display(target, schema))


def _postgres_keywords(text: str) -> DestinationSpec:
    found = _KEYWORD_SCHEMA.search(text)
    schema = _schema(found.group(2) if found else None)
    target = _KEYWORD_SCHEMA.sub(" ", text).strip()
    return DestinationSpec("postgres", target, schema, _postgres_display(target, schema))


def _postgres_display(target: str, schema: str) -> str:
    """postgresql://host:port/db as libpq will resolve it (URL, then PG* variables, then defaults)."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(target)
    except Exception as error:  # psycopg.ProgrammingError: libpq could not parse it
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"Invalid destination: not a PostgreSQL connection string ({reason}).") from None
    env = os.environ
    host = str(params.get("host") or env.get("PGHOST") or "localhost")
    port = str(params.get("port") or env.get("PGPORT") or "5432")
    user = str(params.get("user") or env.get("PGUSER") or "")
    dbname = str(params.get("dbname") or env.get("PGDATABASE") or user or "")
    if not port.isdigit():
        raise ConfigError(f"Invalid destination: the PostgreSQL port {port!r} is not a number.")
    at = f"{user}@" if user else ""
    return f"postgresql://{at}{host}:{port}/{dbname} (schema {schema})"
