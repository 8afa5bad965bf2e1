"""The real ``civreg`` processes: a department consumer stops cleanly on SIGTERM, and the suppression service's
commands answer from what it applied."""

from __future__ import annotations

import csv
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from civreg.settings import Settings
from producers.publisher import Publisher
from tests.support.environment import REPO, settings_env
from tests.support.factories import make_address, make_death, make_person

pytestmark = pytest.mark.kafka

CIVREG = [sys.executable, "-m", "civreg"]


def _outcomes(database: Path) -> int:
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(database) as connection:
            return int(connection.execute("SELECT COUNT(*) FROM civreg_event_outcomes").fetchone()[0])
    except sqlite3.OperationalError:  # tables not created yet
        return 0


def test_sigterm_finishes_the_batch_and_exits_cleanly_then_the_commands_answer(
    bus_settings: Settings, tmp_path: Path
) -> None:
    deceased = make_person(given_names="Ada", family_name="Okafor", address=make_address(postcode="LS1 4AP"))
    deaths = [make_death(entry_number=1, deceased=deceased)] + [
        make_death(entry_number=n, deceased=make_person(given_names=f"Person{n}", identifiers=None))
        for n in range(2, 41)
    ]
    with Publisher(bus_settings) as publisher:
        for death in deaths:
            publisher.publish(death)

    env = settings_env(bus_settings)
    consumer = subprocess.Popen(
        [*CIVREG, "consume", "--department", "suppression", "--batch-size", "7"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    database = bus_settings.department_database("suppression")
    deadline = time.monotonic() + 60
    while _outcomes(database) < len(deaths) and time.monotonic() < deadline and consumer.poll() is None:
        time.sleep(0.2)
    consumer.send_signal(signal.SIGTERM)
    stdout, stderr = consumer.communicate(timeout=60)
    assert consumer.returncode == 0, stderr.decode()[-2000:]
    assert _outcomes(database) == len(deaths)
    assert b'"event": "stopping"' in stderr and b"SIGTERM" in stderr
    assert b"Okafor" not in stderr and b"AB123456C" not in stderr  # no personal data in logs
    assert b"DeathRegistered applied: 40" in stdout

    check = subprocess.run(
        [*CIVREG, "suppress", "check", "--nino", "AB 12 34 56 C"], env=env, cwd=REPO, capture_output=True, check=False
    )
    assert check.returncode == 1, check.stderr.decode()
    assert check.stdout.startswith(b"SUPPRESS (matched by nino")
    alive = subprocess.run(
        [
            *CIVREG,
            "suppress",
            "check",
            "--given-names",
            "Grace",
            "--family-name",
            "Hopper",
            "--date-of-birth",
            "1950-01-01",
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        check=False,
    )
    assert alive.returncode == 0 and alive.stdout.startswith(b"SEND")

    recipients = tmp_path / "recipients.csv"
    with recipients.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["recipient_id", "given_names", "family_name", "date_of_birth", "postcode"])
        writer.writerow(["1", "Ada", "Okafor", deceased.date_of_birth, "LS1 4AP"])
        writer.writerow(["2", "Grace", "Hopper", "1950-01-01", "LS1 4AP"])
    filtered = subprocess.run(
        [
            *CIVREG,
            "mailing",
            "filter",
            str(recipients),
            "--out",
            str(tmp_path / "send.csv"),
            "--report",
            str(tmp_path / "report.csv"),
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        check=False,
    )
    assert filtered.returncode == 0, filtered.stderr.decode()
    assert b"2 recipients; send: 1, suppress: 1" in filtered.stdout
    assert [row["recipient_id"] for row in csv.DictReader((tmp_path / "send.csv").open())] == ["2"]
