"""What the Airbyte platform relies on, short of building the image (no Docker engine here):
the Dockerfile passes hadolint and declares the contract (slim base, non-root user, the wheel,
`source-klaviyo` as ENTRYPOINT and AIRBYTE_ENTRYPOINT, io.airbyte labels); metadata.yaml is a
registry definition consistent with the package; and the entrypoint behaves as the platform
calls it: `$AIRBYTE_ENTRYPOINT <verb>` through a shell, config/catalog/state from files, every
protocol message on stdout."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
import uuid
from pathlib import Path

import yaml

from frontdoors.harness import BIN, KEY, ROOT, STREAM_NAMES, clean_env, config, simulator, write_json
from klaviyo_source.airbyte.catalog import discovered_streams

DOCKERFILE = ROOT / "Dockerfile"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
METADATA = yaml.safe_load((ROOT / "metadata.yaml").read_text())["data"]


def final_stage() -> list[str]:
    lines = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text()).splitlines()
    instructions = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    last_from = max(i for i, line in enumerate(instructions) if line.startswith("FROM "))
    return instructions[last_from:]


def instruction(stage: list[str], name: str) -> list[str]:
    return [line[len(name) + 1 :] for line in stage if line.startswith(name + " ")]


def test_dockerfile_passes_hadolint() -> None:
    done = subprocess.run(
        [str(BIN / "hadolint"), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_declares_the_platform_contract() -> None:
    stage = final_stage()
    assert re.fullmatch(r"python:3\.1[1-9]-slim", instruction(stage, "FROM")[0])
    (user,) = instruction(stage, "USER")
    assert user.split(":")[0] not in ("0", "root")
    assert json.loads(instruction(stage, "ENTRYPOINT")[0]) == ["source-klaviyo"]
    assert 'AIRBYTE_ENTRYPOINT="source-klaviyo"' in instruction(stage, "ENV")
    labels = dict(re.findall(r"(io\.airbyte\.\w+)=(\S+)", " ".join(instruction(stage, "LABEL"))))
    assert labels["io.airbyte.name"] == METADATA["dockerRepository"]
    assert labels["io.airbyte.version"] == "${VERSION}"
    assert f"ARG VERSION={VERSION}" in stage
    assert any("klaviyo_source-*.whl" in run for run in instruction(stage, "RUN"))
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {"*", "!pyproject.toml", "!README.md", "!src/"} <= set(ignored)
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["source-klaviyo"] == "klaviyo_source.cli:main"


def test_metadata_is_a_registry_definition_of_this_package() -> None:
    required = (
        "name definitionId connectorType dockerRepository dockerImageTag license documentationUrl "
        "githubIssueLabel connectorSubtype releaseStage"
    )
    assert all(METADATA.get(key) for key in required.split())
    assert uuid.UUID(METADATA["definitionId"]).version == 4
    assert METADATA["definitionId"] != "95e8cffd-b8c4-4039-968e-d32fb4a69bde"  # not Airbyte's connector
    assert METADATA["dockerImageTag"] == VERSION and METADATA["license"] == "MIT"
    assert METADATA["connectorType"] == "source"
    assert 30 <= METADATA["maxSecondsBetweenMessages"] <= 3600  # the engine's idle heartbeat is 25 s
    assert set(METADATA["suggestedStreams"]["streams"]) <= set(STREAM_NAMES)
    for version, change in METADATA["releases"]["breakingChanges"].items():
        assert tuple(map(int, str(version).split("."))) <= tuple(map(int, VERSION.split(".")))
        assert change["message"] and re.fullmatch(r"\d{4}-\d{2}-\d{2}", change["upgradeDeadline"])
        for scope in change.get("scopedImpact", []):
            assert set(scope["impactedScopes"]) <= set(STREAM_NAMES)


def test_acceptance_config_references_files_that_exist() -> None:
    text = (ROOT / "acceptance-test-config.yml").read_text()
    paths = set(re.findall(r"(?:config_path|catalog_path|state_path): (\S+)", text))
    assert paths
    for path in paths - {"secrets/config.json"}:  # secrets/ holds the user's own config
        assert (ROOT / path).is_file(), path
    catalog = json.loads((ROOT / "tests/frontdoors/acceptance/configured_catalog.json").read_text())
    assert [entry["stream"]["name"] for entry in catalog["streams"]] == [
        s["name"] for s in discovered_streams()
    ]


def airbyte_entrypoint() -> str:
    (line,) = [line for line in instruction(final_stage(), "ENV") if line.startswith("AIRBYTE_ENTRYPOINT=")]
    value: str = json.loads(line.split("=", 1)[1])
    return value


def platform(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """As the platform's launcher does: `eval "$AIRBYTE_ENTRYPOINT <args>"` in a shell."""
    env = clean_env(AIRBYTE_ENTRYPOINT=airbyte_entrypoint(), PATH=f"{BIN}:/usr/bin:/bin")
    done = subprocess.run(
        ["sh", "-c", f'eval "$AIRBYTE_ENTRYPOINT {command}"'],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert KEY not in done.stdout + done.stderr
    return done


def messages(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines()]  # every stdout line is a message


def test_the_entrypoint_as_the_platform_calls_it(tmp_path: Path) -> None:
    spec = platform("spec", tmp_path)
    assert spec.returncode == 0 and [m["type"] for m in messages(spec.stdout)] == ["SPEC"]
    catalog = json.loads(
        (ROOT / "tests/frontdoors/acceptance/configured_catalog_incremental.json").read_text()
    )
    catalog["streams"] = [
        entry for entry in catalog["streams"] if entry["stream"]["name"] in ("metrics", "flows")
    ]
    write_json(tmp_path / "catalog.json", catalog)
    with simulator(seed=13) as sim:
        write_json(tmp_path / "config.json", config(sim))
        check = platform("check --config config.json", tmp_path)
        assert [m["connectionStatus"] for m in messages(check.stdout)] == [{"status": "SUCCEEDED"}]  # type: ignore[index]
        assert len(messages(platform("discover --config config.json", tmp_path).stdout)) == 1
        first = platform("read --config config.json --catalog catalog.json", tmp_path)
        assert first.returncode == 0, first.stderr
        last = {
            m["state"]["stream"]["stream_descriptor"]["name"]: m["state"]
            for m in messages(first.stdout)
            if m["type"] == "STATE"
        }  # type: ignore[index]
        assert sorted(last) == ["flows", "metrics"]
        write_json(tmp_path / "state.json", list(last.values()))
        second = platform("read --config config.json --catalog catalog.json --state state.json", tmp_path)
    assert second.returncode == 0, second.stderr
    kinds = {m["type"] for m in messages(first.stdout)}
    assert {"RECORD", "STATE", "TRACE"} <= kinds
    first_records = sum(1 for m in messages(first.stdout) if m["type"] == "RECORD")
    second_records = sum(1 for m in messages(second.stdout) if m["type"] == "RECORD")
    assert first_records > second_records  # the state file was read
