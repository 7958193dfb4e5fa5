"""`klaviyo-source demo`: a simulated Klaviyo account -> sync into ./klaviyo_demo.duckdb -> new activity
-> incremental sync -> a few questions answered in SQL.

No account and no network: the simulator serves a seeded account on 127.0.0.1 from this process.
The demo database is rebuilt on every run (the simulated account is generated afresh).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
from rich.console import Console
from rich.table import Table

from klaviyo_simulator import SimulatorOptions, start_in_thread
from klaviyo_source.config import Config
from klaviyo_source.destinations.base import parse_destination
from klaviyo_source.streams.table import DEFAULT_STREAMS
from klaviyo_source.sync.command import SyncOptions, SyncReport, run_sync
from klaviyo_source.sync.progress import ProgressMode, print_summary

DEMO_FILE = "klaviyo_demo.duckdb"
# Medium scale (200,000 events), trimmed where Klaviyo's slow rate tiers would make the demo wait:
# list profile counts (1 request/s), campaign recipient estimates and profiles with predictive
# analytics (150/min).
SIZES = {
    "medium": {"profiles": 5_000, "lists": 10, "campaigns": 60},
    "small": {"lists": 4, "campaigns": 20},
}
CHANGES = {
    "events": 1_500,
    "profiles_created": 40,
    "profiles_updated": 150,
    "campaigns_updated": 6,
    "lists_updated": 2,
    "flows_updated": 2,
}

QUESTIONS: list[tuple[str, str]] = [
    (
        "Events per metric per day, last 7 days (the five busiest metrics)",
        """
        WITH named AS (
            SELECT CAST(e."datetime" AS DATE) AS day, m.name AS metric
            FROM klaviyo.events e
            JOIN klaviyo.metrics m ON m.id = e.relationships->'metric'->'data'->>'id'
            WHERE e."datetime" >= CAST(now() AS DATE) - INTERVAL 6 DAY
        ), busiest AS (
            SELECT metric FROM named GROUP BY metric ORDER BY count(*) DESC LIMIT 5
        )
        SELECT day, metric, count(*) AS events
        FROM named WHERE metric IN (SELECT metric FROM busiest)
        GROUP BY day, metric ORDER BY day, events DESC
        """,
    ),
    (
        "Largest lists by profile_count",
        "SELECT name, profile_count, updated FROM klaviyo.lists_detailed ORDER BY profile_count DESC LIMIT 5",
    ),
    (
        "Campaigns per channel (and how many are archived)",
        """
        SELECT channel, count(*) AS campaigns, count(*) FILTER (WHERE archived) AS archived,
               max(updated_at) AS last_updated
        FROM klaviyo.campaigns GROUP BY channel ORDER BY campaigns DESC
        """,
    ),
]


def explore_command(path: Path) -> str:
    """A query of the demo database with the DuckDB package this Python already has (no duckdb CLI)."""
    shown = Path(sys.executable)
    with contextlib.suppress(ValueError):
        shown = shown.relative_to(Path.cwd())
    sql = "SELECT * FROM klaviyo.profiles LIMIT 5"
    code = f"import duckdb; print(duckdb.connect('{path}', read_only=True).sql('{sql}'))"
    return f'{shown} -c "{code}"'


def _remove_previous(path: Path) -> None:
    for stale in (path, path.with_name(path.name + ".wal"), path.with_name(path.name + ".lock")):
        stale.unlink(missing_ok=True)


def _sync(sim: Any, path: Path, progress: ProgressMode) -> SyncReport:
    config = Config(api_key=sim.api_key, base_url=sim.base_url, backoff_base=0.1)
    options = SyncOptions(
        config=config,
        destination=parse_destination(f"duckdb:///{path}"),
        streams=list(DEFAULT_STREAMS),
        progress=progress,
    )
    return asyncio.run(run_sync(options))


def _answer(console: Console, path: Path) -> None:
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        for title, sql in QUESTIONS:
            result = con.execute(sql)
            columns = [d[0] for d in result.description or []]
            rows = result.fetchall()
            console.print(f"[bold]{title}[/bold]")
            table = Table()
            for index, column in enumerate(columns):
                numeric = bool(rows) and all(isinstance(row[index], int | float) for row in rows)
                table.add_column(column, justify="right" if numeric else "left")
            for row in rows:
                table.add_row(*(_cell(value) for value in row))
            console.print(table)
            console.print(f"[dim]{' '.join(sql.split())}[/dim]\n", soft_wrap=True)


def _cell(value: Any) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    if hasattr(value, "strftime") and hasattr(value, "hour"):
        return str(value.strftime("%Y-%m-%d %H:%M"))
    return str(value)


def run(seed: int, scale: str, path: Path, progress: ProgressMode) -> int:
    console = Console(highlight=False)
    started = time.monotonic()
    _remove_previous(path)
    console.print(f"[bold]1. A simulated Klaviyo account[/bold] (seed {seed}, {scale} scale)")
    with start_in_thread(SimulatorOptions(seed=seed, scale=scale, sizes=SIZES[scale])) as sim:
        console.print(
            f"   {sim.store.event_count:,} events, {sim.store.profile_count:,} profiles, "
            f"{len(sim.store.records('campaign'))} campaigns, {len(sim.store.records('list'))} lists "
            f"at {sim.base_url} (no network, no account)\n"
        )
        console.print(f"[bold]2. First sync: every stream into {path}[/bold]")
        first = _sync(sim, path, progress)
        print_summary(first.rows, first.duration, title="first sync", requests_sent=first.requests_sent)
        if first.exit_code != 0:
            console.print(f"[red]the first sync failed: {first.error or 'see the summary'}[/red]")
            return first.exit_code

        changed = sim.advance(**CHANGES)
        console.print(
            f"\n[bold]3. New activity in the account[/bold]: {len(changed.get('events', [])):,} events, "
            f"{len(changed.get('profiles_created', []))} new and {len(changed.get('profiles_updated', []))} "
            f"updated profiles, {len(changed.get('campaigns_updated', []))} campaigns edited"
        )
        time.sleep(1.1)  # a sync reads up to the second it starts: let the new activity's second pass
        console.print(
            "[bold]4. Incremental sync[/bold]: only what changed is read (state lives in the database)"
        )
        second = _sync(sim, path, progress)
        print_summary(
            second.rows, second.duration, title="incremental sync", requests_sent=second.requests_sent
        )
        if second.exit_code != 0:
            console.print(f"[red]the incremental sync failed: {second.error or 'see the summary'}[/red]")
            return second.exit_code

    console.print("\n[bold]5. Questions answered with SQL on the synced tables[/bold]\n")
    _answer(console, path)
    console.print(
        f"Done in {time.monotonic() - started:.0f}s. Explore it yourself (tables in schema klaviyo):"
    )
    console.print(explore_command(path), markup=False, soft_wrap=True, highlight=False)
    return 0


def main(argv: list[str]) -> int:
    """argv[0] == "demo"."""
    parser = argparse.ArgumentParser(
        prog="klaviyo-source demo", description=__doc__.splitlines()[0] if __doc__ else ""
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--path", default=DEMO_FILE, help="DuckDB file to (re)create (default: %(default)s)")
    parser.add_argument("--scale", choices=["small", "medium"], default="medium")
    parser.add_argument("--progress", choices=["auto", "rich", "plain", "none"], default="auto")
    args = parser.parse_args(argv[1:])
    return run(args.seed, args.scale, Path(args.path), args.progress)


if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
