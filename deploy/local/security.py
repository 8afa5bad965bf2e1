"""TLS, SASL/SCRAM and the ACL authorizer for the local broker (``civreg dev up --secure`` and the secure tests).

Why generated here: a developer (or a test) gets the production shape of the bus, encrypted and authenticated with
one principal per role, without a PKI or a secrets manager. Everything lives under ``<home>/kafka/secure/``:

- ``ca.pem`` (the local CA's certificate, what a client needs: ``CIVREG_SSL_CA_LOCATION``), ``ca-key.pem``;
- ``broker.pem``: the broker's private key and certificate chain (``ssl.keystore.type=PEM``), for 127.0.0.1 and
  localhost;
- ``credentials``: one ``name=password`` line per principal, mode 0600 (``CIVREG_SASL_PASSWORD_FILE``). Passwords
  are random, never printed, never logged.

``SecurityConfig`` is what ``LocalKafka`` renders into ``server.properties`` (mode 0600 there too: the broker's
own SCRAM login is in it) and adds to its own admin client.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "ADMIN",
    "SCRAM_MECHANISM",
    "SecurityConfig",
    "read_credentials",
    "secure_dir",
]

ADMIN = "admin"
"""The broker's own principal (inter-broker traffic) and the super user that applies topics, users and ACLs."""
SCRAM_MECHANISM = "SCRAM-SHA-512"
SCRAM_ITERATIONS = 8192
_VALIDITY = datetime.timedelta(days=825)


def secure_dir(base_dir: Path) -> Path:
    """Where a local broker keeps its CA, certificate and credentials (``<home>/kafka/secure``)."""
    return base_dir / "secure"


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by its owner only, from the first byte on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    path.chmod(0o600)


def read_credentials(path: Path) -> dict[str, str]:
    """The ``name=password`` lines of a credentials file (empty when it does not exist)."""
    if not path.is_file():
        return {}
    found: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, password = line.strip().partition("=")
        if sep and name and not name.startswith("#"):
            found[name.strip()] = password.strip()
    return found


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "civreg local development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    # PKCS#8, unencrypted: the format Kafka's PEM keystore reads without ssl.key.password.
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class SecurityConfig:
    """One secure local broker's files and the properties that switch it to SASL_SSL with ACLs."""

    directory: Path

    @property
    def ca_path(self) -> Path:
        """The CA certificate clients trust (``CIVREG_SSL_CA_LOCATION``)."""
        return self.directory / "ca.pem"

    @property
    def ca_key_path(self) -> Path:
        return self.directory / "ca-key.pem"

    @property
    def keystore_path(self) -> Path:
        """The broker's key and certificate chain, one PEM file."""
        return self.directory / "broker.pem"

    @property
    def credentials_path(self) -> Path:
        """``name=password`` per principal, 0600 (``CIVREG_SASL_PASSWORD_FILE``)."""
        return self.directory / "credentials"

    def exists(self) -> bool:
        """True once this broker was set up secure (its data is then formatted with the admin's SCRAM login)."""
        return self.keystore_path.is_file() and ADMIN in read_credentials(self.credentials_path)

    # ---- material -----------------------------------------------------------------------------------------

    def ensure_material(self) -> None:
        """Create the CA, the broker certificate and the admin password once; later starts reuse them."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        if not (self.ca_path.is_file() and self.ca_key_path.is_file() and self.keystore_path.is_file()):
            self._generate_certificates()
        self.ensure_users([ADMIN])

    def _generate_certificates(self) -> None:
        now = datetime.datetime.now(datetime.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name("civreg local CA")
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        broker_key = ec.generate_private_key(ec.SECP256R1())
        broker_cert = (
            x509.CertificateBuilder()
            .subject_name(_name("localhost"))
            .issuer_name(ca_name)
            .public_key(broker_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
        _write_private(self.ca_key_path, _pem_key(ca_key))
        _write_private(
            self.keystore_path, _pem_key(broker_key) + broker_cert.public_bytes(serialization.Encoding.PEM) + ca_pem
        )
        self.ca_path.write_bytes(ca_pem)  # public: what every client trusts
        self.ca_path.chmod(0o644)

    def ensure_users(self, names: Iterable[str]) -> dict[str, str]:
        """Give every principal in ``names`` a random password (kept when it has one); returns all of them."""
        known = read_credentials(self.credentials_path)
        missing = [name for name in names if name not in known]
        if missing or not self.credentials_path.is_file():
            for name in missing:
                known[name] = secrets.token_urlsafe(24)  # URL-safe: no '=' or quote to escape anywhere
            lines = ["# Written by 'civreg dev up --secure': one SCRAM login per principal. Keep it secret."]
            lines += [f"{name}={password}" for name, password in sorted(known.items())]
            _write_private(self.credentials_path, ("\n".join(lines) + "\n").encode("utf-8"))
        return known

    def password(self, name: str) -> str:
        """The password of principal ``name`` (KeyError naming the principal when it has none)."""
        known = read_credentials(self.credentials_path)
        if name not in known:
            raise KeyError(f"no local credentials for principal {name!r}")
        return known[name]

    # ---- rendering ----------------------------------------------------------------------------------------

    def format_arguments(self) -> list[str]:
        """``StorageTool format`` arguments creating the admin's SCRAM login (the broker needs it to start)."""
        return ["--add-scram", f"{SCRAM_MECHANISM}=[name={ADMIN},password={self.password(ADMIN)}]"]

    def server_properties(self, port: int, controller_port: int) -> list[str]:
        """Lines replacing the PLAINTEXT listener: SASL_SSL on ``port``, SCRAM, and the StandardAuthorizer."""
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{ADMIN}" password="{self.password(ADMIN)}";'
        )
        return [
            f"listeners=SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=SASL_SSL://127.0.0.1:{port}",
            "inter.broker.listener.name=SASL_SSL",
            "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
            f"sasl.enabled.mechanisms={SCRAM_MECHANISM}",
            f"sasl.mechanism.inter.broker.protocol={SCRAM_MECHANISM}",
            f"listener.name.sasl_ssl.{SCRAM_MECHANISM.lower()}.sasl.jaas.config={jaas}",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={self.keystore_path}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={self.ca_path}",
            "ssl.endpoint.identification.algorithm=https",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found=false",
            # The controller listener is PLAINTEXT on 127.0.0.1 only: the broker reaches its controller there as
            # ANONYMOUS, which therefore must be a super user; no client can produce or fetch on that port.
            f"super.users=User:{ADMIN};User:ANONYMOUS",
        ]

    def client_config(self, username: str = ADMIN) -> dict[str, Any]:
        """librdkafka settings for ``username`` on this broker (the runner's own admin client uses ``admin``)."""
        return {
            "security.protocol": "SASL_SSL",
            "ssl.ca.location": str(self.ca_path),
            "sasl.mechanism": SCRAM_MECHANISM,
            "sasl.username": username,
            "sasl.password": self.password(username),
        }

    def client_env(self, username: str = ADMIN) -> dict[str, str]:
        """The ``CIVREG_*`` settings a client needs, except its password (it names the file holding it)."""
        return {
            "CIVREG_LOCAL_SECURE": "true",
            "CIVREG_SECURITY_PROTOCOL": "SASL_SSL",
            "CIVREG_SASL_MECHANISM": SCRAM_MECHANISM,
            "CIVREG_SSL_CA_LOCATION": str(self.ca_path),
            "CIVREG_SASL_USERNAME": username,
            "CIVREG_SASL_PASSWORD_FILE": str(self.credentials_path),
        }
