"""``civreg agreements show DEPT --sample N`` and ``civreg agreements validate`` as processes, on the real broker.

The sample decodes messages the router wrote to the department's topic with the schema they were written with and
sets each field beside the agreement: every field carried is allowed, the withheld ones are absent from the bytes,
and no value is printed (only its shape).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from civreg.settings import PACKAGED_CONFIG, Settings
from consumers.operations.agreement_sample import sample_department_topic
from consumers.runtime.agreements import agreement_for
from producers.publisher import Publisher
from tests.support.environment import REPO, settings_env
from tests.support.factories import make_death, make_person
from tests.support.personal_data import leaks_as_words, personal_values
from tests.support.routing import route


def _civreg(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "civreg", *args],
        env={**settings_env(settings), "COLUMNS": "200", "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        timeout=120,
    )


@pytest.mark.kafka
@pytest.mark.registry
def test_show_sample_decodes_the_departments_own_messages_beside_its_agreement_without_values(
    registry_settings: Settings,
) -> None:
    settings = registry_settings
    death = make_death(deceased=make_person(given_names="Philippa Rosamund"))
    with Publisher(settings) as publisher:
        publisher.publish(death)
    route(settings)

    agreement = agreement_for("dvla", settings.config_files.agreements_dir)
    [sample] = sample_department_topic(settings, agreement, 5)
    assert sample.event_type == "DeathRegistered"
    assert sample.outside_agreement == []
    assert "death.deceased.given_names" in sample.carried
    assert "death.deceased.identifiers.nino" in sample.withheld  # dvla's agreement does not name it
    assert "death.deceased.identifiers.nino" not in sample.carried  # ... and the bytes do not carry it

    shown = _civreg(settings, "agreements", "show", "dvla", "--sample", "1", "--event-type", "DeathRegistered")
    assert shown.returncode == 0, shown.stderr
    assert "Driver and Vehicle Licensing Agency" in shown.stdout
    assert "every field in the message is in dvla's agreement" in shown.stdout
    assert "death.deceased.given_names" in shown.stdout and "text, 17 chars" in shown.stdout
    values = personal_values([death.model_dump(mode="json")])
    assert leaks_as_words(shown.stdout + shown.stderr, values) == []


def test_validate_names_the_file_and_line_of_a_broken_agreement(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", postgres_dsn=None)
    good = _civreg(settings, "agreements", "validate")
    assert good.returncode == 0, good.stderr
    assert all(name in good.stdout for name in ("dvla", "tax", "suppression"))

    config = tmp_path / "config"
    shutil.copytree(PACKAGED_CONFIG.root / "agreements", config / "agreements")
    path = config / "agreements" / "dvla.yaml"
    text = path.read_text().replace('"death.{date_of_registration,', '"death.{cause_of_death,date_of_registration,')
    path.write_text(text)
    line = next(n for n, row in enumerate(text.splitlines(), start=1) if "cause_of_death" in row)
    broken = _civreg(settings, "agreements", "validate", CIVREG_CONFIG_DIR=str(config))
    assert broken.returncode == 1
    assert f"dvla.yaml:{line}: 'death.cause_of_death' is not a field of DeathRegistered" in broken.stderr
