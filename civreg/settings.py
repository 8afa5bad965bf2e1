"""One frozen settings object, read from ``CIVREG_*`` environment variables (and ``.env``, then ``<home>/dev.env``).

Why one object: every service (publisher, consumers, the local runner) must agree on where Kafka is and what the
topics are called, and a frozen object cannot drift mid-run. Why ``dev.env``: ``civreg dev up`` writes the address
of the registry it started there, so services learn it from settings, never by looking for a dev process.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, DotEnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from schemas.errors import CivregError

__all__ = ["DEV_ENV_FILE", "PACKAGED_CONFIG", "ConfigFiles", "CredentialsError", "Settings", "load_settings"]

DEFAULT_HOME = Path(".civreg")
DEV_ENV_FILE = "dev.env"
"""Under ``home``: the settings the running dev stack hands to every later process (read only with the local broker)."""


class CredentialsError(CivregError, ValueError):
    """The password file is unreadable or has no password for the user; names the file and user, never a secret."""


@dataclass(frozen=True)
class ConfigFiles:
    """Where each deployment data file lies under one directory (``CIVREG_CONFIG_DIR``); the names live only here."""

    root: Path

    @property
    def agreements_dir(self) -> Path:
        """The departments' data-sharing agreements, one ``<department>.yaml`` each."""
        return self.root / "agreements"

    @property
    def topics(self) -> Path:
        """How each kind of topic is configured (``civreg topics apply``)."""
        return self.root / "topics.yaml"

    @property
    def compatibility_policy(self) -> Path:
        """The schema compatibility level of each subject."""
        return self.root / "schema-compatibility.yaml"


PACKAGED_CONFIG = ConfigFiles(Path(str(resources.files("deploy"))))
"""The copy installed with civreg (package data of ``deploy``): the default of ``CIVREG_CONFIG_DIR``."""


class Settings(BaseSettings):
    """Where Kafka is, how to authenticate, where state lives.

    When ``bootstrap_servers`` is unset the bus uses the local embedded broker that ``civreg dev up`` starts;
    when it is set, nothing local starts and the bus talks to the user's own cluster.
    """

    model_config = SettingsConfigDict(env_prefix="CIVREG_", env_file=".env", frozen=True, extra="ignore")

    bootstrap_servers: str | None = Field(
        default=None, description="Your own Kafka cluster, e.g. 'kafka-1:9092,kafka-2:9092'. Unset: local broker."
    )
    security_protocol: str = Field(default="PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.")
    sasl_mechanism: str = Field(default="SCRAM-SHA-512")
    sasl_username: str | None = Field(default=None, description="Your principal, e.g. 'tax' or 'register-office'.")
    sasl_password: SecretStr | None = None
    sasl_password_file: Path | None = Field(
        default=None,
        description="File holding the password instead: one line (a mounted secret), or 'name=password' lines "
        "looked up by CIVREG_SASL_USERNAME ('civreg dev up --secure' writes one).",
    )
    ssl_ca_location: Path | None = Field(
        default=None, description="PEM file of the CA that signed the brokers' certificates (SSL, SASL_SSL)."
    )
    local_secure: bool = Field(
        default=False,
        description="The local broker runs with TLS, SASL/SCRAM and ACLs ('civreg dev up --secure' sets it).",
    )

    home: Path = Field(default=DEFAULT_HOME, description="Local state: broker data, department databases, logs.")
    cache_dir: Path = Field(default=Path(".cache"), description="Downloaded Kafka jars and the Maven repository.")
    kafka_home: Path | None = Field(
        default=None, description="An existing Apache Kafka installation (its libs/ is used instead of Maven)."
    )
    kafka_version: str = "4.1.1"
    local_port: int = Field(default=9092, description="Port of the local broker on 127.0.0.1.")
    local_controller_port: int = Field(default=9093)

    database_dir: Path = Field(
        default=DEFAULT_HOME / "departments",
        description="Where department SQLite databases live (default: <home>/departments).",
    )
    postgres_dsn: SecretStr | None = Field(
        default=None,
        description="PostgreSQL for department stores, e.g. 'postgresql://civreg:PASSWORD@db:5432/civreg' (one schema "
        "per department, civreg_<department>). Unset: one SQLite file per department in database_dir.",
    )
    outbox: SecretStr | None = Field(
        default=None,
        description="The register office's outbox that 'civreg relay' publishes: a SQLite file path or a PostgreSQL "
        "DSN 'postgresql://office:PASSWORD@db:5432/registrations' (table civreg_outbox, see producers/outbox.py).",
    )

    registry_url: str | None = Field(
        default=None,
        description="Your own Confluent-compatible schema registry (Confluent, Karapace, or Apicurio's "
        "'.../apis/ccompat/v7'). Unset: the local registry while 'civreg dev up' runs it, else local schema ids.",
    )
    registry_username: str | None = Field(default=None, description="Basic-auth user of your registry.")
    registry_password: SecretStr | None = Field(default=None, description="Basic-auth password of your registry.")
    registry_auto_register: bool = Field(
        default=True,
        description="Producers register a schema missing from its subject. Production: false, and CI publishes "
        "schemas with 'civreg schemas register'.",
    )
    registry_wait_seconds: float = Field(
        default=60.0, gt=0, description="How long a service waits, retrying with backoff, for the registry at start."
    )
    registry_version: str = Field(default="3.3.3", description="Apicurio Registry version of the local registry.")
    registry_java_home: Path | None = Field(
        default=None, description="A Java 21+ for the local registry (Apicurio 3); unset: found automatically."
    )
    local_registry_port: int = Field(default=8081, description="Port of the local registry on 127.0.0.1.")
    local_registry_health_port: int = Field(default=8082, description="Its health (management) port.")

    config_dir: Path = Field(
        default=PACKAGED_CONFIG.root,
        description="Directory of the deployment data: agreements/, topics.yaml, schema-compatibility.yaml "
        "(default: the copy installed with civreg).",
    )

    topic_prefix: str = Field(default="civreg", description="Prefix of every topic name; tests use unique ones.")
    client_id: str = "civreg"
    session_timeout_ms: int = Field(
        default=45_000, ge=6_000, description="How long the group waits for a silent consumer before rebalancing."
    )
    max_poll_interval_ms: int = Field(
        default=300_000,
        ge=6_000,
        description="Longest a consumer may go between polls before the group evicts it (at least the session "
        "timeout). A consumer waiting for the registry pauses its partitions and keeps polling, so it stays.",
    )
    group_instance_id: str | None = Field(
        default=None,
        min_length=1,
        description="Static group membership: a name unique per running instance of a department (Kubernetes: the "
        "StatefulSet pod name). A restarted instance gets its partitions back at once instead of after the session "
        "timeout; unset: dynamic membership.",
    )

    metrics_port: int = Field(
        default=0,
        ge=0,
        le=65_535,
        description="Port of a long-running service's /metrics, /healthz and /readyz; 0 = off (containers use 9400).",
    )
    metrics_host: str = Field(
        default="127.0.0.1", description="Address the metrics endpoint listens on; 0.0.0.0 in a container."
    )
    status_endpoints: str = Field(
        default="", description="Comma-separated metrics endpoints `civreg status` reads, e.g. 'http://tax:9400'."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, environment and ``.env`` first; then what the dev stack wrote under ``home``."""
        dev_stack = _DevStackSource(settings_cls, (init_settings, env_settings, dotenv_settings))
        return init_settings, env_settings, dotenv_settings, dev_stack, file_secret_settings

    @model_validator(mode="before")
    @classmethod
    def _databases_under_home(cls, data: Any) -> Any:
        """A home set without a database directory keeps the department databases under that home."""
        if isinstance(data, dict) and data.get("home") is not None and data.get("database_dir") is None:
            return {**data, "database_dir": Path(data["home"]) / "departments"}
        return data

    @model_validator(mode="after")
    def _poll_interval_covers_the_session(self) -> Settings:
        """librdkafka refuses a poll interval shorter than the session timeout; say so by setting name."""
        if self.max_poll_interval_ms < self.session_timeout_ms:
            raise ValueError("max_poll_interval_ms must be at least session_timeout_ms")
        return self

    @property
    def uses_local_broker(self) -> bool:
        """True when the bus should start and use the embedded local broker."""
        return self.bootstrap_servers is None

    @property
    def effective_bootstrap_servers(self) -> str:
        """The bootstrap servers clients connect to."""
        return self.bootstrap_servers or f"127.0.0.1:{self.local_port}"

    @property
    def local_registry_url(self) -> str:
        """The Confluent-compatible API of the local registry ``civreg dev up`` starts."""
        return f"http://127.0.0.1:{self.local_registry_port}/apis/ccompat/v7"

    @property
    def dev_env_file(self) -> Path:
        """Where ``civreg dev up`` hands over the dev stack's settings (the registry address)."""
        return self.home / DEV_ENV_FILE

    @property
    def config_files(self) -> ConfigFiles:
        """The deployment data files under ``config_dir``."""
        return ConfigFiles(self.config_dir)

    def resolved_sasl_password(self) -> SecretStr | None:
        """``sasl_password``, else the password of ``sasl_username`` in ``sasl_password_file`` (None without one).

        Errors name the file and the user, never a password.
        """
        if self.sasl_password is not None or self.sasl_password_file is None:
            return self.sasl_password
        path = self.sasl_password_file
        try:
            lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        except OSError as exc:
            raise CredentialsError(f"cannot read CIVREG_SASL_PASSWORD_FILE {path}: {exc.strerror}") from None
        lines = [line for line in lines if line and not line.startswith("#")]
        for line in lines:
            name, sep, password = line.partition("=")
            if sep and name.strip() == self.sasl_username:
                return SecretStr(password.strip())
        if len(lines) == 1 and "=" not in lines[0]:
            return SecretStr(lines[0])
        raise CredentialsError(f"CIVREG_SASL_PASSWORD_FILE {path} has no password for user {self.sasl_username!r}")

    def as_principal(self, name: str) -> Settings:
        """These settings logged in as principal ``name``, its password looked up in ``sasl_password_file``.

        Why: one credentials file (``civreg dev up --secure`` writes one, a vault can mount one) serves every role,
        and a process picks its role by name alone (``CIVREG_SASL_USERNAME=tax``); the demo runs each step so.
        """
        if self.sasl_password_file is None:
            raise CredentialsError(
                f"running as principal {name!r} needs CIVREG_SASL_PASSWORD_FILE ('name=password' lines)"
            )
        return self.model_copy(update={"sasl_username": name, "sasl_password": None})

    def state_path(self, *parts: str) -> Path:
        """A path under the local state directory (created on demand by its user)."""
        return self.home.joinpath(*parts)

    def department_database(self, department: str) -> Path:
        """The SQLite database of one department."""
        return self.database_dir / f"{department}.sqlite3"


class _DevStackSource(PydanticBaseSettingsSource):
    """``<home>/dev.env``, below every other source and only while the bus uses the local broker.

    ``home`` comes from the sources above it (default ``.civreg``). With ``CIVREG_BOOTSTRAP_SERVERS`` set the user
    runs their own cluster, and a dev stack's registry must not leak into it.
    """

    def __init__(self, settings_cls: type[BaseSettings], above: tuple[PydanticBaseSettingsSource, ...]) -> None:
        super().__init__(settings_cls)
        self._above = above

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: ``__call__`` reads the whole file at once."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        given: dict[str, Any] = {}
        for source in reversed(self._above):
            given.update(source())
        if given.get("bootstrap_servers") is not None:
            return {}
        path = Path(given.get("home") or DEFAULT_HOME) / DEV_ENV_FILE
        if not path.is_file():
            return {}
        return DotEnvSettingsSource(self.settings_cls, env_file=path)()


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit overrides (used by the CLI and tests)."""
    return Settings(**overrides)  # type: ignore[arg-type]
