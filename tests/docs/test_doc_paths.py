"""The docs name only paths that exist: every file or module path in README.md and docs/*.md
(`src/...`, `tests/...`, `bench/...`, `docs/...`, `klaviyo_source/...`, `klaviyo_simulator/...`,
package-relative module paths such as `engine/scan.py`, and the entries of a layout tree in a
code block, e.g. `cli.py` under `src/klaviyo_source/`) must be in the repository."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
# Where a path may be rooted: the repository, then the packages (for `engine/scan.py`-style names).
BASES = [ROOT, ROOT / "src", ROOT / "src" / "klaviyo_source", ROOT / "src" / "klaviyo_simulator"]
TOP = r"(?:src|tests|bench|docs|tools|scripts|klaviyo_source|klaviyo_simulator)"
# Not preceded by a path, URL or identifier character: `/work/shared/docs/x.md` and
# `https://…/docs/…` are outside the repository.
EDGE = r"(?<![\w/.:~-])"
ROOTED = re.compile(EDGE + TOP + r"/[\w./<>{}*-]*")
RELATIVE_MODULE = re.compile(EDGE + r"[a-z_][\w]*/(?:[\w]+/)*[\w]+\.py\b")


def named_paths(text: str) -> set[str]:
    """Path-like names in `text`, cut before any placeholder (`<stream>`, `{id}`, `*`)."""
    found = set()
    for match in [*ROOTED.finditer(text), *RELATIVE_MODULE.finditer(text)]:
        path = re.split(r"[<>{}*]", match.group(0))[0].rstrip(".,:;")
        if path.count("/") or path.endswith(".py"):
            found.add(path)
    return found


FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
TREE_ROOT = re.compile(TOP + r"/(?:[\w.-]+/)*$")
ENTRY = re.compile(r"[\w.-]+(?:/[\w.-]+)*/?$")


def tree_paths(text: str) -> set[str]:
    """Entries of layout trees in code blocks: a root (`src/klaviyo_source/` at the start of a
    line, maybe followed by sub-folders such as `unit/`), then one entry per line at the first
    indentation below it (deeper lines continue a description)."""
    found: set[str] = set()
    for block in FENCE.findall(text):
        root, indent = None, None
        for line in block.splitlines():
            words = line.split()
            if not words:
                continue
            depth = len(line) - len(line.lstrip())
            if depth == 0:
                root, indent = (words[0], None) if TREE_ROOT.fullmatch(words[0]) else (None, None)
                if root:
                    found.update(root + word for word in words[1:] if re.fullmatch(r"[\w-]+/", word))
                continue
            indent = depth if indent is None else indent
            entry = words[0]
            if root and depth == indent and ENTRY.fullmatch(entry) and ("." in entry or entry.endswith("/")):
                found.add(root + entry)
    return found


@cache
def tracked() -> frozenset[str]:
    """Every file git tracks and every folder holding one (a folder left behind with only caches
    in it does not count); the working tree when this is not a git checkout."""
    try:
        listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
        files = listed.stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        files = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file()]
    return frozenset(str(parent) for name in files for parent in [Path(name), *Path(name).parents])


def exists(path: str) -> bool:
    return any(str((base / path).relative_to(ROOT)) in tracked() for base in BASES)


def test_named_paths_are_found_in_each_doc() -> None:
    """The scanner itself: placeholders, URLs and paths outside the repository are handled."""
    text = (
        "see `engine/scan.py`, tests/kit/truth.py, src/klaviyo_source/streams/schemas/<stream>.json, "
        "/work/shared/docs/klaviyo-api.md and https://example.com/docs/x.md"
    )
    assert named_paths(text) == {
        "engine/scan.py",
        "tests/kit/truth.py",
        "src/klaviyo_source/streams/schemas/",
    }
    assert exists("engine/scan.py") and exists("tests/kit/truth.py") and not exists("tests/integration/")
    tree = "```\nsrc/klaviyo_source/\n  cli.py     verbs\n  engine/    the engine\n               (more.py)\n"
    tree += "tests/  unit/ (pure)  kit/\n```\n"
    assert tree_paths(tree) == {
        "src/klaviyo_source/cli.py",
        "src/klaviyo_source/engine/",
        "tests/unit/",
        "tests/kit/",
    }


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_every_path_a_doc_names_exists(doc: Path) -> None:
    text = doc.read_text()
    missing = sorted(path for path in named_paths(text) | tree_paths(text) if not exists(path))
    assert missing == [], f"{doc.relative_to(ROOT)} names paths that do not exist: {missing}"
