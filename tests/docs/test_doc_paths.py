"""The docs name only paths that exist: every file or module path in README.md and docs/*.md
(`src/...`, `tests/...`, `bench/...`, `docs/...`, `klaviyo_source/...`, `klaviyo_simulator/...`,
and package-relative module paths such as `engine/scan.py`) must be in the repository."""

from __future__ import annotations

import re
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


def exists(path: str) -> bool:
    return any((base / path).exists() for base in BASES)


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


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_every_path_a_doc_names_exists(doc: Path) -> None:
    missing = sorted(path for path in named_paths(doc.read_text()) if not exists(path))
    assert missing == [], f"{doc.relative_to(ROOT)} names paths that do not exist: {missing}"
