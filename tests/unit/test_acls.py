"""ACL generation (pure: agreements + prefix -> bindings), the committed Strimzi users, and the client credentials."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from civreg.kafka_config import admin_config
from civreg.settings import CredentialsError, Settings
from consumers.routing.router import lane_group
from deploy.acls import (
    K8S_USER_PREFIX,
    AclApplyError,
    AclRule,
    Pattern,
    Resource,
    acl_rules,
    agreement_departments,
    kafka_users,
    kafka_users_yaml,
)
from deploy.local.dev_env import update_dev_env
from schemas.topics import (
    acknowledgement_topic,
    dead_letter_topic,
    department_topic,
    disclosure_topic,
    registration_topics,
    router_group,
)
from tests.support.environment import REPO

PREFIX = "civreg"
AGREEMENTS = REPO / "deploy" / "agreements"
DEPARTMENTS = agreement_departments(AGREEMENTS)


def _of(rules: list[AclRule], principal: str) -> set[tuple[Resource, str, Pattern, str]]:
    return {(r.resource, r.name, r.pattern, r.operation) for r in rules if r.principal == principal}


def _topics(grants: set[tuple[Resource, str, Pattern, str]], operation: str) -> set[str]:
    return {name for resource, name, _, op in grants if resource is Resource.TOPIC and op == operation}


def test_every_agreement_gets_a_principal() -> None:
    assert sorted(path.stem for path in AGREEMENTS.glob("*.yaml")) == DEPARTMENTS
    principals = {rule.principal for rule in acl_rules(DEPARTMENTS, PREFIX)}
    assert principals == {"register-office", "router", "operator", *DEPARTMENTS}


@pytest.mark.parametrize("department", DEPARTMENTS)
def test_a_department_reads_only_its_own_topic_in_its_own_group(department: str) -> None:
    grants = _of(acl_rules(DEPARTMENTS, PREFIX), department)
    assert _topics(grants, "Read") == {department_topic(department, PREFIX), dead_letter_topic(department, PREFIX)}
    assert _topics(grants, "Write") == {dead_letter_topic(department, PREFIX), acknowledgement_topic(PREFIX)}
    groups = {(name, pattern) for resource, name, pattern, _ in grants if resource is Resource.GROUP}
    assert groups == {
        (f"{PREFIX}.department.{department}", Pattern.LITERAL),
        (f"{PREFIX}.dead-letter-reader.", Pattern.PREFIXED),  # `dead-letters list`: assigned, never committed
    }
    assert not any(pattern is Pattern.PREFIXED for resource, _, pattern, _ in grants if resource is Resource.TOPIC)
    assert not set(registration_topics(PREFIX).values()) & {name for _, name, _, _ in grants}


def test_the_register_office_only_writes_registrations() -> None:
    grants = _of(acl_rules(DEPARTMENTS, PREFIX), "register-office")
    assert _topics(grants, "Write") == set(registration_topics(PREFIX).values())
    assert {op for *_, op in grants} == {"Describe", "Write", "IdempotentWrite"}


def test_the_router_reads_registrations_and_writes_department_topics_and_the_ledger_in_transactions() -> None:
    grants = _of(acl_rules(DEPARTMENTS, PREFIX), "router")
    # the registrations, and its own dead letters (`civreg dead-letters list -d router`, in throw-away groups)
    assert _topics(grants, "Read") == set(registration_topics(PREFIX).values()) | {dead_letter_topic("router", PREFIX)}
    assert (Resource.GROUP, f"{PREFIX}.dead-letter-reader.", Pattern.PREFIXED, "Read") in grants
    assert _topics(grants, "Write") == {department_topic(d, PREFIX) for d in DEPARTMENTS} | {
        disclosure_topic(PREFIX),
        dead_letter_topic("router", PREFIX),
    }
    # one lane per department: groups <prefix>.router.<department>, the same names as transactional ids
    assert (Resource.GROUP, router_group(PREFIX), Pattern.PREFIXED, "Read") in grants
    assert all(lane_group(d, PREFIX).startswith(router_group(PREFIX)) for d in DEPARTMENTS)
    for operation in ("Write", "Describe"):
        assert (Resource.TRANSACTIONAL_ID, router_group(PREFIX), Pattern.PREFIXED, operation) in grants
    assert (Resource.CLUSTER, "kafka-cluster", Pattern.LITERAL, "IdempotentWrite") in grants


def test_operators_describe_and_read_only_the_acknowledgements() -> None:
    grants = _of(acl_rules(DEPARTMENTS, PREFIX), "operator")
    assert _topics(grants, "Read") == {acknowledgement_topic(PREFIX)}  # `trace`; they hold no personal data
    assert not _topics(grants, "Write")
    assert {op for *_, op in grants} == {"Describe", "DescribeConfigs", "Read"}


def test_a_new_agreement_adds_exactly_one_department(tmp_path: Path) -> None:
    for path in AGREEMENTS.glob("*.yaml"):
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "coroners.yaml").write_text("department: coroners\n")
    assert agreement_departments(tmp_path) == sorted([*DEPARTMENTS, "coroners"])
    before, after = set(acl_rules(DEPARTMENTS, PREFIX)), set(acl_rules(agreement_departments(tmp_path), PREFIX))
    added = after - before
    assert before <= after
    assert {r.principal for r in added} == {"coroners", "router"}  # the router writes its new topic
    assert {r.name for r in added if r.principal == "router"} == {department_topic("coroners", PREFIX)}


def test_an_agreement_without_a_department_is_refused(tmp_path: Path) -> None:
    (tmp_path / "nameless.yaml").write_text("controller: someone\n")
    with pytest.raises(AclApplyError, match=r"nameless\.yaml: 'department'"):
        agreement_departments(tmp_path)


def test_the_topic_prefix_scopes_every_resource() -> None:
    for rule in acl_rules(DEPARTMENTS, "test-x"):
        assert rule.resource is Resource.CLUSTER or rule.name.startswith("test-x."), rule


# ---- Kubernetes ------------------------------------------------------------------------------------------------


def test_committed_kafka_users_are_the_generated_ones() -> None:
    committed = (REPO / "deploy" / "k8s" / "users.yaml").read_text()
    assert committed == kafka_users_yaml(DEPARTMENTS, PREFIX), "run: civreg acls k8s > deploy/k8s/users.yaml"


def test_kafka_users_grant_exactly_the_generated_bindings() -> None:
    documents = [doc for doc in yaml.safe_load_all((REPO / "deploy" / "k8s" / "users.yaml").read_text()) if doc]
    from_file: set[tuple[str, str, str, str, str]] = set()
    for user in documents:
        assert user["kind"] == "KafkaUser"
        assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
        acl: dict[str, Any]
        for acl in user["spec"]["authorization"]["acls"]:
            resource = acl["resource"]
            for operation in acl["operations"]:
                from_file.add(
                    (
                        user["metadata"]["name"],
                        resource["type"],
                        resource.get("name", "kafka-cluster"),
                        resource.get("patternType", "literal"),
                        operation,
                    )
                )
    generated = {
        (r.principal, r.resource.value, r.name, r.pattern.value, r.operation)
        for r in acl_rules(DEPARTMENTS, PREFIX, user_prefix=K8S_USER_PREFIX)
    }
    assert from_file == generated
    names = {user["metadata"]["name"] for user in kafka_users(DEPARTMENTS, PREFIX)}
    assert {f"{K8S_USER_PREFIX}{d}" for d in DEPARTMENTS} <= names


# ---- client credentials -------------------------------------------------------------------------------------


def test_a_password_file_is_looked_up_by_user_and_never_quoted(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text("# comment\nadmin=s3cret-admin\ntax=s3cret-tax\n")
    settings = Settings(sasl_username="tax", sasl_password_file=credentials, security_protocol="SASL_SSL")
    assert admin_config(settings)["sasl.password"] == "s3cret-tax"
    with pytest.raises(CredentialsError) as refused:
        Settings(sasl_username="dvla", sasl_password_file=credentials).resolved_sasl_password()
    assert "dvla" in str(refused.value) and "s3cret" not in str(refused.value)
    mounted = tmp_path / "password"
    mounted.write_text("only-the-password\n")  # a Kubernetes Secret mounted as a file
    assert Settings(sasl_username="tax", sasl_password_file=mounted).resolved_sasl_password() is not None
    assert "only-the-password" not in repr(Settings(sasl_username="tax", sasl_password_file=mounted))


def test_a_ca_file_reaches_every_client(tmp_path: Path) -> None:
    settings = Settings(ssl_ca_location=tmp_path / "ca.pem", security_protocol="SASL_SSL")
    assert admin_config(settings)["ssl.ca.location"] == str(tmp_path / "ca.pem")


def test_dev_env_keys_are_updated_without_wiping_the_others(tmp_path: Path) -> None:
    path = tmp_path / "dev.env"
    update_dev_env(path, {"CIVREG_REGISTRY_URL": "http://r"})
    update_dev_env(path, {"CIVREG_SECURITY_PROTOCOL": "SASL_SSL"})
    update_dev_env(path, {"CIVREG_REGISTRY_URL": None})
    assert "CIVREG_SECURITY_PROTOCOL=SASL_SSL" in path.read_text()
    assert "CIVREG_REGISTRY_URL" not in path.read_text()
    assert Settings(home=tmp_path).security_protocol == "SASL_SSL"
    update_dev_env(path, {"CIVREG_SECURITY_PROTOCOL": None})
    assert not path.exists()


def test_a_secure_local_broker_listens_only_with_tls_and_sasl_behind_the_authorizer(tmp_path: Path) -> None:
    from deploy.local.kafka import LocalKafka

    kafka = LocalKafka(Settings(home=tmp_path, local_port=29092, local_controller_port=29093, local_secure=True))
    assert kafka.security is not None
    kafka.security.ensure_material()
    props = kafka.server_properties().splitlines()
    assert "listeners=SASL_SSL://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093" in props
    assert not any(line.startswith("listeners=PLAINTEXT") for line in props)
    assert "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer" in props
    assert "allow.everyone.if.no.acl.found=false" in props
    assert oct(kafka.security.credentials_path.stat().st_mode & 0o777) == "0o600"
    plain = LocalKafka(Settings(home=tmp_path / "plain", local_port=29092, local_controller_port=29093))
    assert plain.security is None and "authorizer" not in plain.server_properties()
