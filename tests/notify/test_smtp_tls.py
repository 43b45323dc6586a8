"""SMTP over STARTTLS and implicit TLS, with login, against a real aiosmtpd server on loopback.

The server presents a certificate from a throw-away CA; the mailer must verify
it (via LOCKBOX_SMTP_CA_FILE), log in, and deliver; an untrusted certificate
or a wrong password must fail rather than fall back.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import smtplib
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lockbox.config import Settings
from lockbox.notify.mailer import SmtpMailer
from tests.notify.helpers import Collector, free_port

USER, PASSWORD = "lockbox", "s3cret-smtp-password"


def _cert(tmp: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 / localhost signed by it."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Lockbox test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
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
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = tmp / "ca.pem", tmp / "server.pem", tmp / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file


def _authenticator(
    _server: Any, _session: Any, _envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = (
        mechanism in ("LOGIN", "PLAIN")
        and isinstance(data, LoginPassword)
        and data.login == USER.encode()
        and data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return _cert(tmp_path_factory.mktemp("tls"))


def _server_context(certs: tuple[Path, Path, Path]) -> ssl.SSLContext:
    _ca, cert, key = certs
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture(params=["starttls", "tls"])
def tls_server(
    request: pytest.FixtureRequest, certs: tuple[Path, Path, Path]
) -> Iterator[tuple[str, int, Collector]]:
    mode = request.param
    collector = Collector()
    port = free_port()
    context = _server_context(certs)
    kwargs: dict[str, Any] = {
        "hostname": "127.0.0.1",
        "port": port,
        "authenticator": _authenticator,
        "auth_require_tls": True,
    }
    if mode == "starttls":
        kwargs.update(tls_context=context, require_starttls=True)
    else:
        # The whole connection is TLS; aiosmtpd only tracks STARTTLS for auth_require_tls.
        kwargs.update(ssl_context=context, server_hostname="localhost", auth_require_tls=False)
    controller = Controller(collector, **kwargs)
    controller.start()
    try:
        yield mode, port, collector
    finally:
        controller.stop()


def _message() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Lockbox <lockbox@lockbox.localhost>"
    msg["To"] = "paula@contoso.example"
    msg["Subject"] = "tls test"
    msg["Message-ID"] = "<msg_tls@lockbox>"
    msg.set_content("body")
    return msg


def _settings(mode: str, port: int, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_security": mode,
        "smtp_username": USER,
        "smtp_password": PASSWORD,
    }
    values.update(overrides)
    return Settings(**values)


def test_delivers_over_verified_tls_with_login(
    tls_server: tuple[str, int, Collector], certs: tuple[Path, Path, Path]
) -> None:
    mode, port, collector = tls_server
    mailer = SmtpMailer(_settings(mode, port, smtp_ca_file=certs[0]))
    try:
        mailer.send(_message())
    finally:
        mailer.close()
    assert [r.message_id for r in collector.messages] == ["<msg_tls@lockbox>"]


def test_untrusted_certificate_is_refused(tls_server: tuple[str, int, Collector]) -> None:
    mode, port, collector = tls_server
    mailer = SmtpMailer(_settings(mode, port))  # system trust store: the test CA is unknown
    with pytest.raises(ssl.SSLCertVerificationError):
        mailer.send(_message())
    mailer.close()
    assert collector.messages == []


def test_wrong_password_is_refused(
    tls_server: tuple[str, int, Collector], certs: tuple[Path, Path, Path]
) -> None:
    mode, port, collector = tls_server
    mailer = SmtpMailer(_settings(mode, port, smtp_ca_file=certs[0], smtp_password="wrong"))
    with pytest.raises(smtplib.SMTPAuthenticationError):
        mailer.send(_message())
    mailer.close()
    assert collector.messages == []


def test_password_in_clear_text_to_a_remote_host_is_refused() -> None:
    with pytest.raises(ValueError, match="clear text"):
        SmtpMailer(_settings("none", 587, smtp_host="smtp.example.com"))
