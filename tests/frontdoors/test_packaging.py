"""pip: `python -m build` makes an sdist and a wheel that `twine check` accepts; the wheel,
installed into a fresh venv, carries its package data (the OpenAPI file, the stream schemas, the
simulator package) and its commands work from there: `source-klaviyo spec`, `tap-klaviyo-source
--about`, `klaviyo-source simulate` (started, asked for one endpoint, stopped) and
`klaviyo-source demo`."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.request
import venv
import zipfile
from pathlib import Path

import pytest

from frontdoors.harness import ROOT, clean_env


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bin/ of a fresh venv with only the wheel (and its dependencies) installed."""
    root = tmp_path_factory.mktemp("venv")
    venv.create(root, with_pip=True)
    (wheel,) = dist.glob("*.whl")
    subprocess.run(
        [
            str(root / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(wheel),
        ],
        check=True,
        timeout=900,
    )
    return root / "bin"


def test_build_makes_an_sdist_and_a_wheel_twine_accepts(dist: Path) -> None:
    files = sorted(path.name for path in dist.iterdir())
    assert len(files) == 2 and files[0].endswith(".whl") and files[1].endswith(".tar.gz"), files
    done = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, dist.iterdir())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.count("PASSED") == 2, done.stdout + done.stderr
    (wheel,) = dist.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "klaviyo_source/openapi/klaviyo-2026-07-15.json" in names
    assert "klaviyo_source/streams/schemas/events.json" in names and "klaviyo_source/py.typed" in names
    assert "klaviyo_simulator/app.py" in names and "klaviyo_source/singer/tap.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    scripts = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert all(s in scripts for s in ("source-klaviyo =", "klaviyo-source =", "tap-klaviyo-source ="))


def test_the_installed_commands_work(installed: Path, tmp_path: Path) -> None:
    env = clean_env(PATH=f"{installed}:/usr/bin:/bin")
    spec = subprocess.run(
        [str(installed / "source-klaviyo"), "spec"], capture_output=True, timeout=60, env=env
    )
    assert json.loads(spec.stdout)["type"] == "SPEC"
    about = subprocess.run(
        [str(installed / "tap-klaviyo-source"), "--about", "--format", "json"], capture_output=True, env=env
    )
    assert json.loads(about.stdout)["name"] == "tap-klaviyo-source"
    with simulate(installed, env) as (base_url, key):
        request = urllib.request.Request(
            f"{base_url}/api/metrics",
            headers={"Authorization": f"Klaviyo-API-Key {key}", "revision": "2026-07-15"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200 and json.load(answer)["data"]
    demo = subprocess.run(
        [str(installed / "klaviyo-source"), "demo", "--scale", "small", "--progress", "none"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    assert "incremental sync" in demo.stdout and (tmp_path / "klaviyo_demo.duckdb").exists()


class simulate:
    """`klaviyo-source simulate --port 0` from the venv: yields (base URL, key), then stops it."""

    def __init__(self, bin_dir: Path, env: dict[str, str]) -> None:
        self.argv = [str(bin_dir / "klaviyo-source"), "simulate", "--port", "0", "--scale", "small"]
        self.env = env

    def __enter__(self) -> tuple[str, str]:
        self.process = subprocess.Popen(self.argv, stdout=subprocess.PIPE, text=True, env=self.env)
        assert self.process.stdout is not None
        first, second = self.process.stdout.readline(), self.process.stdout.readline()
        url = re.search(r"listening on (http://\S+)", first)
        key = re.search(r"API key: (\S+)", second)
        assert url and key, first + second
        return url.group(1), key.group(1)

    def __exit__(self, *exc: object) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            assert self.process.wait(timeout=30) == 0  # stops cleanly on Ctrl-C
        finally:
            self.process.kill()
