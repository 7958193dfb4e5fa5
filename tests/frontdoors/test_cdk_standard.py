"""Airbyte's own standard connector tests (airbyte-cdk's `standard_tests`, pinned, in its own
cached venv) run against our `source-klaviyo` executable and the simulator, for every stream:
spec, check (valid and invalid config), config matches spec, discover, basic read with schema
validation, bad catalog -> error TRACE, and the two CAT tests reproduced in
cdk_suite/standard_suite.py (full refresh twice identical, future state reads nothing).

The suite runs in a throw-away connector folder named `source-klaviyo` holding our
metadata.yaml and acceptance-test-config.yml, the files they reference, and a
secrets/config.json pointing at the simulator. Its Docker tests (deselected: `-k "not docker"`)
need a Docker engine and the network, neither of which this machine has.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from frontdoors.harness import BIN, CDK, KEY, ROOT, clean_env, config, simulator
from frontdoors.toolvenv import tool_venv

SUITE = Path(__file__).with_name("cdk_suite")
ACCEPTANCE = ROOT / "tests" / "frontdoors" / "acceptance"
EXPECTED = {
    "test_spec",
    "test_check",
    "test_config_matches_spec",
    "test_discover",
    "test_basic_read",
    "test_fail_read_with_bad_catalog",
    "test_full_refresh_twice_identical",
    "test_incremental_with_future_state_reads_nothing",
}


def connector_root(tmp_path: Path, base_url: str) -> Path:
    root = tmp_path / "source-klaviyo"
    (root / "secrets").mkdir(parents=True)
    shutil.copy(ROOT / "metadata.yaml", root)
    shutil.copy(ROOT / "acceptance-test-config.yml", root)
    shutil.copytree(ACCEPTANCE, root / "tests" / "frontdoors" / "acceptance")
    invalid = root / "tests" / "frontdoors" / "acceptance" / "invalid_config.json"
    invalid.write_text(json.dumps(json.loads(invalid.read_text()) | {"base_url": base_url}))
    shutil.copy(SUITE / "suite_conftest.py", root / "conftest.py")
    shutil.copy(SUITE / "source_klaviyo.py", root)
    shutil.copy(SUITE / "standard_suite.py", root / "test_standard.py")
    return root


def test_airbyte_standard_tests_pass_against_the_simulator(tmp_path: Path) -> None:
    python = tool_venv("cdk", CDK) / "python"
    with simulator(seed=12) as sim:
        root = connector_root(tmp_path, sim.base_url)
        (root / "secrets" / "config.json").write_text(json.dumps(config(sim)))
        report = tmp_path / "report.xml"
        done = subprocess.run(
            [
                str(python),
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-k",
                "not docker",
                "-rs",
                f"--junitxml={report}",
                ".",
            ],
            cwd=root,
            env=clean_env(SOURCE_KLAVIYO_EXECUTABLE=str(BIN / "source-klaviyo")),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    output = done.stdout + done.stderr
    assert KEY not in output
    assert done.returncode == 0, output[-6000:]
    outcomes: dict[str, list[str]] = {"passed": [], "skipped": [], "failed": []}
    for case in ElementTree.parse(report).iter("testcase"):
        name, skipped = case.get("name", ""), case.find("skipped")
        if skipped is not None:
            # the only skips: commands a scenario does not run (the invalid config runs `check`)
            assert "does not run for scenario 'invalid_config'" in skipped.get("message", ""), name
            outcomes["skipped"].append(name)
        else:
            outcomes["failed" if len(case) and case[0].tag in ("failure", "error") else "passed"].append(name)
    assert not outcomes["failed"], outcomes
    assert {name.split("[")[0] for name in outcomes["passed"]} == EXPECTED, outcomes
    assert sum(1 for name in outcomes["passed"] if name.startswith("test_check[")) == 2  # valid + invalid
