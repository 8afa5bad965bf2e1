"""Which way dependencies point, and how a service learns what the dev stack and the deployment files say.

The import contracts (pyproject ``[tool.importlinter]``) must hold and must catch a wrong import; a service learns
the dev stack's registry from settings (``<home>/dev.env``), never by looking for a dev process; every deployment
data file is found through one setting, ``CIVREG_CONFIG_DIR``, whose default is the copy installed with civreg.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from civreg.codec_from_settings import open_codec
from civreg.settings import PACKAGED_CONFIG, Settings, load_settings
from consumers.departments import DEPARTMENTS
from consumers.operations.acknowledgements import entitled_departments
from consumers.operations.running import open_store
from consumers.runtime import DepartmentConsumer
from consumers.runtime.agreements import AgreementError
from deploy.local.registry import LocalRegistry, own_registry_url
from deploy.topics import TopicDefinitionError, apply_topics
from schemas.registry import RegistrySchemaResolver, contract_subjects, registry_client
from schemas.topics import Register

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")
PACKAGES = ("civreg", "schemas", "producers", "consumers", "deploy")


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False
    )


# --- the import contracts ------------------------------------------------------------------------------------------


def test_the_import_contracts_hold() -> None:
    result = _lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_consumer_importing_the_dev_registry_breaks_the_contracts(tmp_path: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    letters = tmp_path / "consumers" / "kit" / "letters.py"
    letters.write_text(letters.read_text().replace("import csv\n", "import csv\n\nimport deploy.local.registry\n", 1))
    result = _lint_imports(tmp_path)
    assert result.returncode == 1
    assert "consumers.kit.letters -> deploy.local.registry" in result.stdout


# --- the dev stack hands its registry over through settings ---------------------------------------------------


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No CIVREG_* setting and no .env from the caller; the working directory is ``tmp_path``."""
    for name in list(os.environ):
        if name.startswith("CIVREG_") and not name.startswith("CIVREG_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_dev_env_hands_the_registry_over_only_with_the_local_broker(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = clean_env / "home"
    registry = LocalRegistry(Settings(home=home, postgres_dsn=None))
    assert load_settings(home=home).registry_url is None  # nothing handed over yet: local schema ids

    written = registry.write_dev_env()
    assert written == home / "dev.env"
    assert load_settings(home=home).registry_url == registry.url
    assert own_registry_url(load_settings(home=home)) is None  # the dev tools know it as their own registry
    monkeypatch.setenv("CIVREG_HOME", str(home))
    assert Settings().registry_url == registry.url  # home from the environment, like every civreg command

    monkeypatch.setenv("CIVREG_BOOTSTRAP_SERVERS", "kafka-1:9092")
    assert Settings().registry_url is None  # your own cluster never gets the dev stack's registry
    monkeypatch.delenv("CIVREG_BOOTSTRAP_SERVERS")

    (clean_env / ".env").write_text("CIVREG_REGISTRY_URL=http://dotenv:8081\n")
    assert Settings().registry_url == "http://dotenv:8081"  # .env beats what the dev stack wrote
    monkeypatch.setenv("CIVREG_REGISTRY_URL", "http://mine:8081")
    assert Settings().registry_url == "http://mine:8081"  # and the environment beats both
    assert own_registry_url(Settings()) == "http://mine:8081"
    monkeypatch.delenv("CIVREG_REGISTRY_URL")
    (clean_env / ".env").unlink()

    registry.remove_dev_env()
    assert not written.exists()
    assert Settings().registry_url is None


@pytest.mark.registry
def test_open_codec_uses_the_registry_dev_up_handed_over_and_its_policy_from_the_config_dir(
    registry_url: str, clean_env: Path
) -> None:
    match = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/apis/ccompat/v7", registry_url)
    if match is None:
        pytest.skip("the session's registry is not a local Apicurio on 127.0.0.1")
    config = clean_env / "config"
    shutil.copytree(PACKAGED_CONFIG.root / "agreements", config / "agreements")
    (config / "schema-compatibility.yaml").write_text("default: BACKWARD\n")
    home = clean_env / "home"
    prefix = f"t{uuid.uuid4().hex[:12]}"
    overrides = {"home": home, "local_registry_port": int(match.group(1)), "topic_prefix": prefix}
    LocalRegistry(Settings(**overrides, postgres_dsn=None)).write_dev_env()  # what 'civreg dev up' does

    handed_over = load_settings(**overrides, config_dir=config)
    codec = open_codec(handed_over, publishing=True)
    assert isinstance(codec.resolver, RegistrySchemaResolver)
    assert codec.resolver.url == registry_url
    client = registry_client(registry_url)
    subject = contract_subjects(prefix)[0].subject
    assert client.get_compatibility(subject) == "BACKWARD"  # auto-registration followed CIVREG_CONFIG_DIR's policy

    LocalRegistry(handed_over).remove_dev_env()  # what 'civreg dev down' does
    assert not isinstance(open_codec(load_settings(**overrides)).resolver, RegistrySchemaResolver)


# --- one setting finds every deployment data file -------------------------------------------------------------


def test_the_installed_copy_is_the_default_config_dir(clean_env: Path) -> None:
    files = load_settings().config_files
    assert files == PACKAGED_CONFIG
    assert files.topics.is_file() and files.compatibility_policy.is_file()
    assert {path.stem for path in files.agreements_dir.glob("*.yaml")} == set(DEPARTMENTS)


def test_agreements_and_topics_come_from_civreg_config_dir(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = clean_env / "config"
    shutil.copytree(PACKAGED_CONFIG.root / "agreements", config / "agreements")
    (config / "agreements" / "passports.yaml").unlink()
    pensions = config / "agreements" / "pensions.yaml"
    pensions.write_text(pensions.read_text().replace("  - DeathRegistered\n", "", 1))
    (config / "topics.yaml").write_text("profiles: [unclosed\n")
    monkeypatch.setenv("CIVREG_CONFIG_DIR", str(config))
    settings = load_settings(home=clean_env / "home", postgres_dsn=None)
    assert settings.config_files.agreements_dir == config / "agreements"

    store = open_store(settings, "passports")
    try:
        with pytest.raises(AgreementError, match="passports"):
            DepartmentConsumer(DEPARTMENTS["passports"], settings, store)
    finally:
        store.close()
    assert "pensions" in entitled_departments(Register.DEATH, "DeathRegistered", PACKAGED_CONFIG.agreements_dir)
    assert "pensions" not in entitled_departments(
        Register.DEATH, "DeathRegistered", settings.config_files.agreements_dir
    )
    with pytest.raises(TopicDefinitionError, match="cannot read topic definitions"):
        apply_topics(settings, ["tax"])  # fails on the file, before anything touches a cluster


def _civreg(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``civreg`` with the local broker (none runs on the given ports) and ``home`` as its state directory."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CIVREG_")}
    env.update(
        CIVREG_HOME=str(home),
        CIVREG_LOCAL_PORT="1",
        CIVREG_LOCAL_REGISTRY_PORT="2",
        PYTHONPATH=str(REPO),
        COLUMNS="200",
    )
    return subprocess.run(
        [sys.executable, "-m", "civreg", *args],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_dev_status_and_down_treat_the_handed_over_registry_as_the_local_one(clean_env: Path) -> None:
    home = clean_env / "home"
    dev_env = LocalRegistry(Settings(home=home, local_registry_port=2, postgres_dsn=None)).write_dev_env()

    status = _civreg(home, "dev", "status", "--timeout", "1")
    assert status.returncode == 3, status.stdout + status.stderr  # the local stack does not run
    assert "registry url" in status.stdout and "not running" in status.stdout  # not probed as "your registry"
    assert dev_env.exists()  # status changes nothing

    down = _civreg(home, "dev", "down", "--timeout", "1")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not dev_env.exists()  # later processes no longer expect the local registry
