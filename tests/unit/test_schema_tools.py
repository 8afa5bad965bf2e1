"""Schema tooling without a registry: ``civreg schemas check --against-git``, the local registry runner's set-up,
and the benchmark's table of cases."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from civreg.settings import Settings
from deploy.local.bench.harness import BenchCase, BenchOptions, SuiteResult, run_cases, write_suite
from deploy.local.registry import POM_PATH, LocalRegistry, LocalRegistryError, find_java
from schemas.catalogue import AVRO_DIR

CIVREG = str(Path(sys.executable).parent / "civreg")


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=civreg tests", "-c", "user.email=tests@civreg.invalid", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


@pytest.fixture
def schema_repo(tmp_path: Path) -> Path:
    """A git repository whose first commit holds this checkout's schemas under schemas/avro."""
    repo = tmp_path / "repo"
    shutil.copytree(AVRO_DIR, repo / "schemas" / "avro")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "schemas")
    return repo


def check(repo: Path, rev: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CIVREG, "schemas", "check", "--against-git", rev, "--repo", str(repo)],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "250", "CIVREG_TOPIC_PREFIX": "civreg"},
        timeout=120,
    )


def test_check_against_the_same_schemas_in_git_passes(schema_repo: Path) -> None:
    result = check(schema_repo, "HEAD")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "compatible: every subject keeps its compatibility rule" in result.stdout


def test_check_against_git_names_subject_field_and_rule_of_a_breaking_change(schema_repo: Path) -> None:
    path = schema_repo / "schemas" / "avro" / "events" / "DeathRegistered.avsc"
    schema = json.loads(path.read_text(encoding="utf-8"))
    schema["fields"].append({"name": "legacy_reference", "type": "string"})  # what consumers hold requires it
    path.write_text(json.dumps(schema, indent=2), encoding="utf-8")
    git(schema_repo, "commit", "-q", "-am", "a field the working tree does not have")

    result = check(schema_repo, "HEAD")
    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        "incompatible: subject civreg.registrations.deaths-uk.gov.civreg.DeathRegistered: FULL_TRANSITIVE broken "
        "(forward: consumers on git HEAD cannot read data written with the new schema): field 'legacy_reference': "
        "git HEAD requires it (no default) but the new schema does not write it [field-missing-without-default]"
    ) in result.stderr.replace("\n", "")
    assert check(schema_repo, "HEAD~1").returncode == 0


def test_an_event_type_new_since_the_revision_is_a_new_subject(schema_repo: Path) -> None:
    git(schema_repo, "rm", "-q", "schemas/avro/events/RegistrationVoided.avsc")
    git(schema_repo, "commit", "-q", "-m", "before voids existed")
    result = check(schema_repo, "HEAD")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nothing (new subject)" in result.stdout


def test_an_unknown_revision_is_an_error_not_a_pass(schema_repo: Path) -> None:
    result = check(schema_repo, "no-such-branch")
    assert result.returncode == 2
    assert "error:" in result.stderr and "no-such-branch" in result.stderr


# --- local registry runner ------------------------------------------------------------------------------------


def test_the_registry_runs_on_loopback_with_its_data_under_the_state_directory(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, local_registry_port=18881, local_registry_health_port=18882)
    registry = LocalRegistry(settings)
    command = registry.command("java")
    assert "-Dquarkus.http.host=127.0.0.1" in command and "-Dquarkus.management.host=127.0.0.1" in command
    assert "-Dquarkus.http.port=18881" in command and "-Dquarkus.management.port=18882" in command
    assert f"-Dapicurio.datasource.url=jdbc:h2:file:{tmp_path.resolve() / 'registry' / 'data' / 'registry'}" in command
    assert "-Xmx256m" in command and command[-1].endswith("quarkus-run.jar")
    assert registry.url == "http://127.0.0.1:18881/apis/ccompat/v7"
    maven = registry.maven_command("mvn")
    assert str(POM_PATH) in maven and "-Dregistry.version=3.3.3" in maven and maven[-1] == "dependency:unpack"
    assert not registry.is_running() and not registry.status().running
    assert registry.stop() is False


def test_without_a_new_enough_java_the_error_says_what_to_do() -> None:
    with pytest.raises(
        LocalRegistryError, match=r"needs Java 99\+; found .*CIVREG_REGISTRY_JAVA_HOME.*CIVREG_REGISTRY_URL"
    ):
        find_java(Settings(), minimum=99)


# --- benchmark framework --------------------------------------------------------------------------------------


def test_bench_cases_are_timed_side_by_side_and_written_as_json(tmp_path: Path) -> None:
    def fast() -> int:
        return 100

    def slow() -> int:
        sum(range(20_000))
        return 100

    results = run_cases([BenchCase("a case", fast, slow, "why"), BenchCase("no baseline", fast)], rounds=3)
    assert results[0].ratio is not None and results[0].ratio > 1
    assert results[1].baseline_us is None and results[1].ratio is None
    path = write_suite(SuiteResult("demo", "Demo", "civreg", "other", results, {"events": 100}), tmp_path)
    written = json.loads(path.read_text(encoding="utf-8"))
    assert path == tmp_path / "demo.json"
    assert [case["name"] for case in written["cases"]] == ["a case", "no baseline"]
    assert written["cases"][0]["ratio"] == pytest.approx(results[0].ratio)
    assert written["context"] == {"events": 100}
    assert BenchOptions().out_dir == Path("bench-results")
