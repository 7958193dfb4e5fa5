"""The `klaviyo-source` / `source-klaviyo` command: dispatches a verb to the module that owns it.

Each verb's module exposes `main(argv: list[str]) -> int`; this file only routes, so the
modules stay independent and the command starts fast (modules are imported lazily).
`--help` lists the verbs, `<verb> --help` a verb's options, `--version` the package version.
A reader that closes stdout early (`source-klaviyo --help | head -1`) ends the command quietly.
"""

from __future__ import annotations

import importlib
import os
import sys
from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "klaviyo-source"
VERBS: dict[str, tuple[str, str]] = {
    "spec": ("klaviyo_source.airbyte.entrypoint", "Airbyte protocol: print the connector spec"),
    "check": ("klaviyo_source.airbyte.entrypoint", "Airbyte protocol: check a config"),
    "discover": ("klaviyo_source.airbyte.entrypoint", "Airbyte protocol: print the catalog"),
    "read": ("klaviyo_source.airbyte.entrypoint", "Airbyte protocol: read records"),
    "sync": ("klaviyo_source.sync.command", "load streams into DuckDB or Postgres"),
    "state": ("klaviyo_source.sync.state_command", "show or reset the sync state saved in a destination"),
    "simulate": ("klaviyo_simulator.cli", "serve a local Klaviyo API simulator"),
    "demo": ("klaviyo_source.sync.demo", "simulator -> sync -> DuckDB -> summary, no account needed"),
}


def package_version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # running from a source tree that was never installed
        from klaviyo_source import __version__

        return __version__


def usage() -> str:
    lines = ["usage: klaviyo-source <verb> [options]", "", "verbs:"]
    lines += [f"  {verb:<9} {text}" for verb, (_, text) in VERBS.items()]
    lines += ["", "Run 'klaviyo-source <verb> --help' for a verb's options; --version prints the version."]
    return "\n".join(lines)


def dispatch(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage(), file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    verb = args[0]
    if verb in ("-V", "--version"):
        print(f"klaviyo-source {package_version()}")
        return 0
    if verb not in VERBS:
        print(f"unknown verb {verb!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(VERBS[verb][0])
    result: int = module.main(args)
    return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        code = dispatch(args)
        sys.stdout.flush()  # surface a closed pipe here, not in the interpreter's final flush
    except BrokenPipeError:
        # The reader stopped reading (`| head`): nothing more can be said on stdout. Point stdout
        # at /dev/null so the interpreter's own flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a tool stopped by a closed pipe
    except KeyboardInterrupt:
        print("\nklaviyo-source: interrupted.", file=sys.stderr)
        return 130
    return code
