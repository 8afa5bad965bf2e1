"""Every Kafka client is named ``CIVREG_CLIENT_ID`` plus its role, so quotas, ACL audits and logs see who is who."""

from __future__ import annotations

import re
import threading
import time

import pytest
from confluent_kafka.admin import AdminClient

from civreg.kafka_config import admin_config, consumer_config, producer_config
from civreg.settings import Settings
from consumers.departments import department_named
from consumers.operations.running import open_store
from consumers.runtime import DepartmentConsumer
from tests.support.environment import REPO


def test_every_config_names_the_client_from_the_setting_and_its_role() -> None:
    settings = Settings(client_id="hmrc-bus", postgres_dsn=None)
    assert producer_config(settings)["client.id"] == "hmrc-bus-producer"
    assert producer_config(settings, role="ack-tax")["client.id"] == "hmrc-bus-ack-tax"
    assert consumer_config(settings, "group", role="trace")["client.id"] == "hmrc-bus-trace"
    assert admin_config(settings)["client.id"] == "hmrc-bus-admin"


def test_a_client_id_cannot_be_set_around_the_setting() -> None:
    settings = Settings(postgres_dsn=None)
    with pytest.raises(TypeError, match="role"):
        producer_config(settings, **{"client.id": "hard-coded"})
    with pytest.raises(TypeError, match="role"):
        consumer_config(settings, "group", **{"client.id": "hard-coded"})


def test_no_module_hard_codes_a_client_id() -> None:
    """Only civreg/kafka_config.py (and the local broker runner, from the setting) may write ``client.id``."""
    allowed = {REPO / "civreg" / "kafka_config.py", REPO / "deploy" / "local" / "kafka.py"}
    offenders = [
        str(path.relative_to(REPO))
        for package in ("civreg", "consumers", "producers", "deploy", "schemas")
        for path in (REPO / package).rglob("*.py")
        if path not in allowed and re.search(r"[\"']client\.id[\"']", path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


@pytest.mark.kafka
def test_a_department_consumer_joins_its_group_under_the_configured_client_id(bus_settings: Settings) -> None:
    settings = bus_settings.model_copy(update={"client_id": "dwp-bus"})
    department = department_named("tax")
    store = open_store(settings, department)
    consumer = DepartmentConsumer(department, settings, store, poll_timeout=0.2)
    worker = threading.Thread(target=consumer.run, kwargs={"max_idle_seconds": 120.0}, daemon=True)
    worker.start()
    admin = AdminClient(admin_config(settings))
    group = department.group_id(settings.topic_prefix)
    client_ids: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while not client_ids and time.monotonic() < deadline:
            (description,) = admin.describe_consumer_groups([group]).values()
            client_ids = [member.client_id for member in description.result(timeout=10).members]
            time.sleep(0.2)
    finally:
        consumer.stop()
        worker.join(timeout=30)
        store.close()
    assert client_ids == ["dwp-bus-tax"]
