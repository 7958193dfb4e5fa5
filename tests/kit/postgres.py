"""Fixtures: a throw-away Postgres server for the session, and destinations of both kinds.

The server is initdb'd into a temp folder and started with pg_ctl on a free port on 127.0.0.1;
as root, initdb refuses to run, so it runs as the `postgres` user (created when missing).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from klaviyo_source.destinations import open_destination as open_url
from klaviyo_source.destinations.base import SqlDestination


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not candidates:
        raise RuntimeError(f"PostgreSQL binary {name} not found; run scripts/ensure-postgres.sh")
    return candidates[-1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ensure_postgres_user() -> None:
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)


def _as_postgres_user(argv: list[str]) -> list[str]:
    """initdb refuses to run as root: run the server binaries as `postgres` then."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A running Postgres on 127.0.0.1; yields a connection URL for database `postgres`."""
    base = Path(tempfile.mkdtemp(prefix="klaviyo-pg-"))
    data = base / "data"
    if os.geteuid() == 0:
        _ensure_postgres_user()
        shutil.chown(base, "postgres")
    port = _free_port()
    subprocess.run(
        _as_postgres_user(
            [_pg_bin("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off -c full_page_writes=off"
    subprocess.run(
        _as_postgres_user(
            [_pg_bin("pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-o", options, "-w", "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres_user([_pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_schema_url(postgres_url: str) -> Iterator[str]:
    """A destination URL with a schema of its own for one test (dropped afterwards)."""
    schema = "t_" + uuid.uuid4().hex[:10]
    yield f"{postgres_url}?schema={schema}"
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())


@pytest.fixture(params=["duckdb", "postgres"])
def destination_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One destination URL per kind: a temp DuckDB file, and a fresh Postgres schema."""
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'test.duckdb'}"
    url: str = request.getfixturevalue("pg_schema_url")
    return url


@pytest.fixture
def open_destination(destination_url: str) -> Iterator[Callable[..., SqlDestination]]:
    """Opens destinations on the test's URL (closed at teardown)."""
    opened: list[SqlDestination] = []

    def opener(sync_id: str = "sync-1") -> SqlDestination:
        destination = open_url(destination_url, sync_id)
        opened.append(destination)
        return destination

    yield opener
    for destination in opened:
        destination.close()
