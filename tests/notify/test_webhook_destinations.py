"""Webhooks cannot reach inside the network: checked at registration and at every delivery.

No test here sends anything to a non-loopback address, nor asks a real resolver:
names are resolved by stub resolvers handed to the code under test, and every
server is on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient

from lockbox.api.app import create_app
from lockbox.config import Settings
from lockbox.domain.errors import ValidationError
from lockbox.notify.dispatcher import Dispatcher
from lockbox.notify.webhooks import CATEGORIES, HttpxWebhookSender, WebhookError
from lockbox.sdk.webhooks import verify
from lockbox.service import audit, outbox, tokens, webhooks
from lockbox.service.webhooks import DestinationPolicy, display_url
from tests.conftest import World
from tests.notify.helpers import WebhookReceiver, free_port, rows, smtp_settings, submit

PUBLIC = "93.184.215.14"  # only ever handed out by stub resolvers: never connected to
INTERNAL_HOST = "hooks.internal.test"


class NoMail:
    def send(self, message: object) -> None:
        pass

    def close(self) -> None:
        pass


def stub(answers: dict[str, Sequence[str]]) -> Callable[[str, int], Sequence[str]]:
    """A resolver that knows only ``answers``; anything else does not exist."""

    def resolve(host: str, _port: int) -> Sequence[str]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers[host]

    return resolve


def never(host: str, _port: int) -> Sequence[str]:
    raise AssertionError(f"an IP literal or a refused name was resolved: {host}")


def deliveries(world: World, status: str | None = None) -> list[Any]:
    """The webhook rows of request events (other subsystems may queue events of their own)."""
    return [
        r
        for r in rows(world.app, status)
        if r.channel == "webhook" and r.topic.startswith("request.")
    ]


def strict(**overrides: Any) -> Settings:
    """Worker settings with no loopback exception: the production rules."""
    return smtp_settings(1, webhook_allow_http_loopback=False, **overrides)


# -- refused at registration -------------------------------------------------------------

FORBIDDEN = [
    "https://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "https://169.254.170.2/v2/credentials",
    "https://127.0.0.1/hook",
    "https://127.8.9.10:8443/hook",
    "https://[::1]/hook",
    "https://0.0.0.0/hook",
    "https://[::]/hook",
    "https://2130706433/hook",  # decimal 127.0.0.1
    "https://0x7f000001/hook",  # hexadecimal
    "https://0177.0.0.1/hook",  # octal
    "https://127.1/hook",  # short form
    "https://0x7f.0.0.1/hook",
    "https://10.0.0.1/hook",
    "https://172.16.5.4/hook",
    "https://192.168.1.1/hook",
    "https://100.64.0.1/hook",  # carrier-grade NAT (shared address space)
    "https://100.100.100.200/latest/meta-data",  # a cloud's metadata service
    "https://169.254.1.1/hook",
    "https://[fe80::1]/hook",
    "https://[fd00:ec2::254]/latest/meta-data",
    "https://[fc00::1]/hook",
    "https://224.0.0.1/hook",
    "https://[ff02::1]/hook",
    "https://240.0.0.1/hook",
    "https://255.255.255.255/hook",
    "https://[::ffff:127.0.0.1]/hook",  # IPv4-mapped IPv6
    "https://[::ffff:169.254.169.254]/hook",
    "https://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of 169.254.169.254
    "https://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://metadata/computeMetadata/v1/",
    "https://instance-data/latest/",
    "https://instance-data.ec2.internal/latest/",
    "https://localhost/hook",
    "https://LOCALHOST./hook",
    "https://api.localhost/hook",
    "https://printer.local/hook",
    "https://nas.home.arpa/hook",
    "https://intranet/hook",  # a single label: resolved through the search domains
    "http://127.0.0.1:9/hook",  # and plain http is refused anyway
]


@pytest.mark.parametrize("url", FORBIDDEN)
def test_every_internal_form_is_refused_without_asking_a_resolver(url: str) -> None:
    with pytest.raises(ValidationError) as err:
        webhooks.check_url(url)
    assert err.value.field == "url"
    with pytest.raises(ValidationError):
        webhooks.check_destination(url, DestinationPolicy(), never)


def test_refused_at_registration_by_tenant_admins_and_provider_admins(world: World) -> None:
    for actor in (world.contoso_admin, world.provider_admin):
        for url in FORBIDDEN:
            with pytest.raises(ValidationError) as err:
                webhooks.register(world.app, actor, url=url, resolve=never)
            assert err.value.field == "url", url
    assert webhooks.list_webhooks(world.app, world.provider_admin) == []


@pytest.mark.parametrize(
    "answers",
    [
        ["10.1.2.3"],
        ["127.0.0.1"],
        ["169.254.169.254"],
        ["::1"],
        ["::ffff:10.0.0.1"],
        [PUBLIC, "192.168.0.10"],  # one internal answer among public ones is enough
    ],
)
def test_a_name_resolving_inside_is_refused_at_registration(
    world: World, answers: list[str]
) -> None:
    resolve = stub({"hooks.evil.example": answers})
    with pytest.raises(ValidationError) as err:
        webhooks.register(
            world.app, world.contoso_admin, url="https://hooks.evil.example/x", resolve=resolve
        )
    assert err.value.field == "url"
    assert "refused destination: hooks.evil.example resolves to" in err.value.message


def test_public_and_unresolvable_names_are_accepted(world: World) -> None:
    resolve = stub({"hooks.contoso.example": [PUBLIC, "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]})
    ok = webhooks.register(
        world.app, world.contoso_admin, url="https://hooks.contoso.example/l", resolve=resolve
    )
    assert ok.row.url == "https://hooks.contoso.example/l"
    # Not resolvable yet (DNS not set up): accepted; every delivery checks again.
    later = webhooks.register(
        world.app, world.contoso_admin, url="https://not-yet.contoso.example/l", resolve=resolve
    )
    assert later.row.id


def test_the_api_refuses_an_internal_url_with_a_422(world: World) -> None:
    client = TestClient(create_app(world.app))
    secret = tokens.create_token(world.app, world.contoso_admin).secret
    for url in ("https://169.254.169.254/latest/meta-data", "https://2130706433/"):
        r = client.post(
            "/v1/webhooks", json={"url": url}, headers={"authorization": f"Bearer {secret}"}
        )
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"].endswith("url")


# -- at delivery: resolved once, checked, pinned ------------------------------------------


def _deliver(world: World, sender: HttpxWebhookSender, settings: Settings | None = None) -> None:
    Dispatcher(
        world.app, settings or strict(), mailer=NoMail(), webhook_sender=sender
    ).dispatch_due()


def test_dns_rebinding_is_refused_at_delivery_and_nothing_is_connected(world: World) -> None:
    receiver = WebhookReceiver().start()  # listening on 127.0.0.1: must stay untouched
    port = receiver.server.server_address[1]
    try:
        url = f"https://rebind.example:{port}/hook"
        webhooks.register(
            world.app,
            world.contoso_admin,
            url=url,
            resolve=stub({"rebind.example": [PUBLIC]}),  # public when checked
        )
        submit(world.app, world.engineer)
        sender = HttpxWebhookSender(
            2.0, policy=DestinationPolicy(), resolve=stub({"rebind.example": ["127.0.0.1"]})
        )
        _deliver(world, sender)
        parked = deliveries(world, "failed")
        assert len(parked) == 1  # refused at once: retrying would not make it safe
        assert parked[0].last_error == "refused destination"
        assert receiver.hits == []
    finally:
        receiver.stop()


def test_every_answer_of_the_single_resolution_is_checked() -> None:
    sender = HttpxWebhookSender(
        1.0, resolve=stub({"mixed.example": [PUBLIC, "10.0.0.7"], "v6.example": ["fe80::1"]})
    )
    for url in ("https://mixed.example/x", "https://v6.example/x"):
        with pytest.raises(WebhookError) as err:
            sender.post(url, b"{}", {})
        assert err.value.category == "refused destination" and err.value.permanent
    calls: list[str] = []

    def counting(host: str, port: int) -> Sequence[str]:
        calls.append(host)
        return ["127.0.0.1"]

    with pytest.raises(WebhookError):
        HttpxWebhookSender(1.0, resolve=counting).post("https://once.example/x", b"{}", {})
    assert calls == ["once.example"]  # resolved once per delivery, never again for the connect


def test_a_url_that_stopped_passing_the_rules_is_refused_at_delivery(world: World) -> None:
    # Registered while the operator allowed it; the allow-list has changed since.
    allowed = DestinationPolicy(networks=(ipaddress.ip_network("10.0.0.0/8"),))
    webhooks.register(
        world.app, world.provider_admin, url="https://10.1.2.3/hook", policy=allowed, resolve=never
    )
    submit(world.app, world.engineer)
    _deliver(world, HttpxWebhookSender(1.0, resolve=never))
    (parked,) = deliveries(world, "failed")
    assert parked.last_error == "refused destination"


# -- an allow-listed internal receiver works (TLS on 127.0.0.1, pinned, SNI kept) ----------


def _tls_files(tmp: Path, name: str) -> tuple[Path, Path, Path]:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Lockbox webhook test CA")])
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
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = tmp / "ca.pem", tmp / "hook.pem", tmp / "hook.key"
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


class TlsReceiver:
    """An HTTPS endpoint on 127.0.0.1 that records the SNI name and the Host header it got."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.hits: list[tuple[bytes, dict[str, str]]] = []
        self.sni: list[str | None] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                receiver.hits.append((body, {k.lower(): v for k, v in self.headers.items()}))
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)

        def remember(_sock: Any, name: str | None, _ctx: Any) -> None:
            receiver.sni.append(name)

        context.sni_callback = remember
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def __enter__(self) -> TlsReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[tuple[TlsReceiver, ssl.SSLContext]]:
    ca, cert, key = _tls_files(tmp_path, INTERNAL_HOST)
    trust = ssl.create_default_context(cafile=str(ca))
    with TlsReceiver(cert, key) as receiver:
        yield receiver, trust


@pytest.mark.parametrize("allow", [INTERNAL_HOST, "127.0.0.0/8"])
def test_an_allow_listed_internal_receiver_works(
    world: World, tls: tuple[TlsReceiver, ssl.SSLContext], allow: str
) -> None:
    receiver, trust = tls
    settings = strict(webhook_allow_hosts=[allow])
    policy = DestinationPolicy.from_settings(settings)
    resolve = stub({INTERNAL_HOST: ["127.0.0.1"]})
    url = f"https://{INTERNAL_HOST}:{receiver.port}/hooks/lockbox?team=ops"
    hook = webhooks.register(
        world.app, world.contoso_admin, url=url, policy=policy, resolve=resolve
    )
    # Without the allow-list the same name is refused.
    with pytest.raises(ValidationError):
        webhooks.register(world.app, world.contoso_admin, url=url, resolve=resolve)
    submit(world.app, world.engineer)
    sender = HttpxWebhookSender(5.0, policy=policy, resolve=resolve, verify=trust)
    _deliver(world, sender, settings)
    assert [r.status for r in deliveries(world)] == ["sent"]
    events = [verify(body, headers, hook.secret)["type"] for body, headers in receiver.hits]
    assert "request.submit" in events
    # Connected to the checked address, while TLS and HTTP still speak to the name.
    assert receiver.sni == [INTERNAL_HOST] * len(receiver.hits)
    assert {h["host"] for _b, h in receiver.hits} == {f"{INTERNAL_HOST}:{receiver.port}"}


def test_the_certificate_is_still_checked_against_the_name(
    tls: tuple[TlsReceiver, ssl.SSLContext],
) -> None:
    receiver, trust = tls
    policy = DestinationPolicy(hosts=frozenset({"other.internal.test"}))
    sender = HttpxWebhookSender(
        5.0, policy=policy, resolve=stub({"other.internal.test": ["127.0.0.1"]}), verify=trust
    )
    with pytest.raises(WebhookError) as err:
        sender.post(f"https://other.internal.test:{receiver.port}/x", b"{}", {})
    assert err.value.category == "TLS error"
    assert receiver.hits == []


# -- failures are categories, not socket errors --------------------------------------------


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections (the kernel's backlog) and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()


def test_failures_are_shown_as_categories(
    world: World, silent_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    failing = WebhookReceiver(answer=lambda _hit: 500).start()
    moved = WebhookReceiver(answer=lambda _hit: 302).start()
    plain = WebhookReceiver().start()  # plain HTTP: an https delivery fails its handshake
    closed = free_port()
    loopback = DestinationPolicy(allow_loopback=True)
    expected = {
        failing.url: "HTTP 500",
        moved.url: "HTTP 302",
        f"http://127.0.0.1:{closed}/hook": "connection refused",
        f"http://127.0.0.1:{silent_port}/hook": "timeout",
        plain.url.replace("http://", "https://"): "TLS error",
        "https://gone.contoso.example/hook": "DNS error",
    }
    try:
        for url in expected:
            webhooks.register(
                world.app, world.provider_admin, url=url, policy=loopback, resolve=stub({})
            )
        submit(world.app, world.engineer)
        settings = smtp_settings(1, webhook_timeout=0.5)
        sender = HttpxWebhookSender(0.5, policy=loopback, resolve=stub({}))
        with caplog.at_level(logging.WARNING, logger="lockbox.worker"):
            _deliver(world, sender, settings)
    finally:
        for server in (failing, moved, plain):
            server.stop()
    hooks = {h.id: h.url for h in webhooks.list_webhooks(world.app, world.provider_admin)}
    shown = {
        hooks[m["recipient"]]: m["last_error"] for m in (outbox.view(r) for r in deliveries(world))
    }
    assert shown == expected
    assert set(shown.values()) <= {*CATEGORIES, "HTTP 500", "HTTP 302"}
    for error in shown.values():
        assert "Errno" not in error and "Error:" not in error and str(closed) not in error
    # The exact cause is for the operator, in the worker's log.
    details = [getattr(r, "fields", {}).get("detail", "") for r in caplog.records]
    assert any("ConnectError" in d or "refused" in d.lower() for d in details), details


# -- URLs are shown with their secrets masked ------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://hooks.slack.com/services/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",
            "https://hooks.slack.com/services/T0001ABCD/B0002EFGH/Xk3j…",
        ),
        (
            "https://discord.com/api/webhooks/123456789012345678/AbCdEfGhIjKlMnOpQrStUvWxYz01",
            "https://discord.com/api/webhooks/1234…/AbCd…",
        ),
        (
            "https://hooks.contoso.example/lockbox?token=s3cr3t&team=ops&sig=abc",
            "https://hooks.contoso.example/lockbox?token=…&team=ops&sig=…",
        ),
        (
            "https://x.example/api?api_key=k&code=c&X-Signature=z",
            "https://x.example/api?api_key=…&code=…&X-Signature=…",
        ),
        (
            "https://hooks.contoso.example/lockbox-notifications/v1/events",
            "https://hooks.contoso.example/lockbox-notifications/v1/events",
        ),
    ],
)
def test_display_url_masks_secret_looking_parts(url: str, shown: str) -> None:
    assert display_url(url) == shown


def test_listings_and_the_audit_log_never_show_the_secret_part(world: World) -> None:
    token = "Xk3j9FqL2mN8pR4sT6vW1yZ0"
    url = f"https://hooks.slack.com/services/T0001ABCD/B0002EFGH/{token}"
    hook = webhooks.register(
        world.app, world.contoso_admin, url=url, resolve=stub({"hooks.slack.com": [PUBLIC]})
    )
    assert hook.row.url == url  # the worker still posts to the real URL
    listed = [webhooks.view(h) for h in webhooks.list_webhooks(world.app, world.contoso_admin)]
    assert token not in str(listed)
    webhooks.delete_webhook(world.app, world.contoso_admin, hook.row.id)
    records, _ = audit.query(world.app, world.contoso_auditor, "contoso", operation="webhook.")
    assert [r.operation for r in records] == ["webhook.create", "webhook.delete"]
    assert token not in str([r.details for r in records])
    assert records[0].details["url"].startswith("https://hooks.slack.com/services/T0001ABCD/")


def test_the_next_checked_address_is_tried_when_connecting_fails() -> None:
    receiver = WebhookReceiver().start()  # on 127.0.0.1 only
    port = receiver.server.server_address[1]
    try:
        sender = HttpxWebhookSender(
            2.0,
            policy=DestinationPolicy(allow_loopback=True),
            resolve=stub({"localhost": ["::1", "127.0.0.1"]}),
        )
        sender.post(f"http://localhost:{port}/hook", b"{}", {"content-type": "application/json"})
        assert len(receiver.hits) == 1
        assert receiver.hits[0].headers["host"] == f"localhost:{port}"
    finally:
        receiver.stop()
