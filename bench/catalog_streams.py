"""Where the full catalog's CPU goes: `source-klaviyo read` of one stream (or group) at a time.

The simulator (own process) serves the catalog figure's dataset (medium scale, N events, 20,000
profiles, no latency, no limits); each stream is read alone, full refresh, and its RECORD lines
counted. CPU is the read child's user+sys (`os.wait4`), start-up included: the `start-up` row is
a read of nothing but start-up and its one tiny stream, to subtract by eye. Prints, asserts nothing.

    .venv/bin/python -m bench.catalog_streams [--events 300000] [--profiles 20000]
        [--streams events,profiles] [--groups list_members+segment_members,...]
"""

from __future__ import annotations

import argparse

from bench.harness import ALL_STREAMS, fresh_account, read_config, run_read, simulator


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--profiles", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workers", type=int, default=30)
    parser.add_argument("--streams", default=None, help="comma list (default: every catalog stream)")
    parser.add_argument("--groups", default=None, help="comma list of a+b+c groups read together")
    args = parser.parse_args()
    if args.groups:
        groups = [group.split("+") for group in args.groups.split(",")]
    else:
        names = args.streams.split(",") if args.streams else list(ALL_STREAMS)
        groups = [[name] for name in names]
    flags: tuple[str, ...] = ("--seed", str(args.seed), "--scale", "medium", "--events", str(args.events))
    flags += ("--profiles", str(args.profiles))
    print(f"{'streams':<44} {'records':>9} {'CPU s':>7} {'us/rec':>8} {'RSS MB':>7} {'wall s':>7}")
    total_cpu, total_records = 0.0, 0
    with simulator(*flags) as sim:
        for group in groups:
            fresh_account(sim.base_url)
            usage = run_read(read_config(sim.base_url, workers=args.workers), group, count=True)
            if usage.exit_code != 0:
                print(f"{'+'.join(group)}: exited {usage.exit_code}: {usage.stderr_tail[-300:]}")
                continue
            total_cpu += usage.cpu
            total_records += usage.records
            per = usage.cpu / usage.records * 1e6 if usage.records else float("nan")
            print(
                f"{'+'.join(group):<44} {usage.records:>9,} {usage.cpu:>7.2f} {per:>8.2f} "
                f"{usage.peak_rss_mb:>7.0f} {usage.wall:>7.2f}",
                flush=True,
            )
    print(f"{'total (each read pays start-up)':<44} {total_records:>9,} {total_cpu:>7.2f}")


if __name__ == "__main__":
    main()
