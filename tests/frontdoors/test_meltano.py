"""Meltano itself (pinned, in its own cached venv) runs our tap as a custom extractor: the
meltano.yml published in docs/meltano.md, with `pip_url` pointing at this checkout, installs the
tap and target-jsonl from PyPI, `meltano run` reads every stream from the simulator, and a second
`meltano run` is incremental from the state Meltano stored."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from frontdoors.harness import (
    KEY,
    MELTANO,
    ROOT,
    STREAM_NAMES,
    advance,
    clean_env,
    record_id,
    simulator,
    truth,
)
from frontdoors.toolvenv import tool_venv
from kit.documents import REPORT_SETTINGS
from klaviyo_source.streams.table import STREAMS_BY_NAME


def documented_project() -> str:
    """The meltano.yml of docs/meltano.md, as users copy it."""
    match = re.search(r"```yaml\n(version: 1\n.*?)```", (ROOT / "docs" / "meltano.md").read_text(), re.S)
    assert match
    return match.group(1)


def meltano(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["meltano", *args], cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert KEY not in done.stdout + done.stderr
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def ids_in(folder: Path, run_files: set[Path]) -> tuple[dict[str, set[str]], int]:
    """ids per stream in the files not seen before, and how many records they hold."""
    ids: dict[str, set[str]] = {name: set() for name in STREAM_NAMES}
    count = 0
    for path in sorted(set(folder.glob("*.jsonl")) - run_files):
        stream = path.stem.rsplit("-", 1)[0]
        lines = path.read_text().splitlines()
        ids[stream] |= {record_id(stream, json.loads(line)) for line in lines}
        count += len(lines)
    return ids, count


def test_meltano_runs_the_tap_twice_second_incremental(tmp_path: Path) -> None:
    meltano_bin = tool_venv("meltano", MELTANO)
    project = tmp_path / "project"
    project.mkdir()
    text = documented_project().replace("pip_url: klaviyo-source\n", f"pip_url: {ROOT}\n")
    assert str(ROOT) in text
    (project / "meltano.yml").write_text(text)
    env = clean_env(PATH=f"{meltano_bin}:/usr/bin:/bin")
    meltano(project, env, "install")
    output = project / "output"
    with simulator(seed=10) as sim:
        env |= {
            "TAP_KLAVIYO_SOURCE_API_KEY": KEY,
            "TAP_KLAVIYO_SOURCE_BASE_URL": sim.base_url,
            "TAP_KLAVIYO_SOURCE_START_DATE": "2020-01-01T00:00:00Z",
            "TAP_KLAVIYO_SOURCE_NUM_WORKERS": "4",
            # the report streams: yesterday, one metric (kit.documents.REPORT_SETTINGS)
            **{f"TAP_KLAVIYO_SOURCE_{k.upper()}": str(v) for k, v in REPORT_SETTINGS.items()},
        }
        meltano(project, env, "run", "tap-klaviyo-source", "target-jsonl")
        first, _ = ids_in(output, set())
        assert first == truth(sim)
        seen = set(output.glob("*.jsonl"))

        changed = advance(sim)
        meltano(project, env, "run", "tap-klaviyo-source", "target-jsonl")
        second, _ = ids_in(output, seen)
        expected = truth(sim)
    assert {name: first[name] | second[name] for name in STREAM_NAMES} == expected
    assert set(changed["events"]) <= second["events"]
    assert set(changed["profiles_created"]) <= second["profiles"]
    cursored = [n for n in STREAM_NAMES if STREAMS_BY_NAME[n].cursor_field is not None]  # others re-read all
    assert (
        sum(len(second[n]) for n in cursored) < sum(len(first[n]) for n in cursored) / 4
    )  # Meltano passed the state
    state = json.loads(meltano(project, env, "state", "get", "dev:tap-klaviyo-source-to-target-jsonl").stdout)
    assert sorted(state["singer_state"]["bookmarks"]) == sorted(STREAM_NAMES)
