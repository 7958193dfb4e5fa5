"""The `klaviyo-source` / `source-klaviyo` command: dispatches a verb to the module that owns it.

Each verb's module exposes `main(argv: list[str]) -> int`; this file only routes, so the
modules stay independent and the command starts fast (modules are imported lazily).
"""

from __future__ import annotations

import importlib
import sys

VERBS: dict[str, tuple[str, str]] = {
    "spec": ("klaviyo_source.airbyte.entrypoint", "Airbyte protocol: print the connector spec"),
    "check": ("klaviyo_source.airbyte.entrypoint", "Airbyte protocol: check a config"),
    "discover": ("klaviyo_source.airbyte.entrypoint", "Airbyte protocol: print the catalog"),
    "read": ("klaviyo_source.airbyte.entrypoint", "Airbyte protocol: read records"),
    "sync": ("klaviyo_source.sync.command", "load streams into DuckDB or Postgres"),
    "simulate": ("klaviyo_simulator.cli", "serve a local Klaviyo API simulator"),
    "demo": ("klaviyo_source.sync.demo", "simulator -> sync -> DuckDB -> summary, no account needed"),
}


def usage() -> str:
    lines = ["usage: klaviyo-source <verb> [options]", "", "verbs:"]
    lines += [f"  {verb:<9} {text}" for verb, (_, text) in VERBS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if args else 2
    verb = args[0]
    if verb not in VERBS:
        print(f"unknown verb {verb!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(VERBS[verb][0])
    result: int = module.main(args)
    return result
