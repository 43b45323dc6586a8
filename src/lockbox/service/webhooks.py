"""Webhook endpoints: register (secret shown once), list, delete.

**Formats.** An endpoint receives either signed JSON events (``standard``, the
default: Standard Webhooks headers, keyed with the secret shown once at
registration) or chat messages for an incoming webhook of Slack (``slack``) or
Microsoft Teams (``teams``), rendered by :mod:`lockbox.notify.chat` with no link
in them. Slack and Teams do not check a signature, so a chat endpoint has no
secret: its URL is the secret, and it is shown masked everywhere
(:func:`display_url`). Every format goes through the same destination checks.

A tenant admin manages their tenant's endpoints; the provider admin manages
provider-level endpoints (which hear every tenant's events) and any tenant's.
Who may do it is the permission matrix (``webhook.manage``); a tenant the
caller cannot see answers *not found*.

**Where a webhook may point.** A webhook makes the Lockbox worker send a POST
wherever its URL says, from inside the provider's network. So a destination
that is, or resolves to, a loopback, private, link-local, multicast,
unspecified or otherwise non-public address (the cloud metadata service at
169.254.169.254 first of all), or that is a metadata or internal host name, is
refused: at registration (the literal URL, then its DNS answers) and again at
every delivery, after resolving the name once and connecting to exactly the
address that was checked (:mod:`lockbox.notify.webhooks`), so a name that
changes its answer after registration (DNS rebinding) reaches nothing inside.
IP addresses written in the old numeric forms (``2130706433``, ``0x7f000001``,
``0177.0.0.1``, ``127.1``) are refused outright: resolvers read them as
addresses while people read them as names. The operator may vouch for internal
receivers by name or network (``LOCKBOX_WEBHOOK_ALLOW_HOSTS``).
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import re
import secrets
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from lockbox.config import Settings, get_settings
from lockbox.domain.audit import PROVIDER_CHAIN
from lockbox.domain.errors import NotFound, PermissionDenied, ValidationError
from lockbox.domain.ids import new_id, optional_id, validate_id
from lockbox.domain.instants import format_instant
from lockbox.domain.lifecycle import Event
from lockbox.domain.permissions import Intent, Scope, allows, authorize, scopes
from lockbox.domain.roles import Principal, Side
from lockbox.domain.text import forbidden
from lockbox.sdk.webhooks import SECRET_PREFIX
from lockbox.service.app import Lockbox, Tx
from lockbox.service.notifications import CHECKPOINT_EVENT
from lockbox.service.tenants import load_tenant
from lockbox.store import outbox as store
from lockbox.store.outbox import WebhookRow

#: Event types an endpoint can subscribe to ("*" = all).
EVENT_TYPES = tuple(
    sorted(
        {f"request.{e.value}" for e in Event}
        | {"request.first_use", "request.access_ending", CHECKPOINT_EVENT}
    )
)
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}
MAX_URL = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: ``resolve(host, port)``: the addresses a name resolves to (injected in tests, so no test
#: ever asks a real resolver or sends traffic anywhere but loopback).
Resolver = Callable[[str, int], Sequence[str]]

#: Host names of cloud metadata services (and their short forms, resolved through the
#: search domains of the worker's host).
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.internal",
        "metadata.tencentyun.com",
        "metadata.platformequinix.com",
    }
)
#: Addresses of metadata services that the address classes below might not all catch.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
#: Names that only ever mean something inside a network: mDNS (RFC 6762), home networks
#: (RFC 8375), ICANN's private-use ``.internal``, and ``localhost`` (RFC 6761).
INTERNAL_SUFFIXES = (".internal", ".local", ".localdomain", ".home.arpa", ".localhost")
#: The well-known NAT64 prefix (RFC 6052): its last 32 bits are an IPv4 address.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: A host that a resolver would read as a number: digits, octal or hex parts, 1 to 4 of them.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$")


class WebhookFormat(StrEnum):
    """What an endpoint receives: signed JSON, or a Slack or Teams chat message."""

    STANDARD = "standard"
    SLACK = "slack"
    TEAMS = "teams"

    @property
    def signed(self) -> bool:
        """Only standard deliveries are signed; Slack and Teams would not check a signature."""
        return self is WebhookFormat.STANDARD


FORMATS = tuple(f.value for f in WebhookFormat)


@dataclass(frozen=True)
class RegisteredWebhook:
    """A new endpoint; ``secret`` is shown to the caller once and never again.

    None for a chat endpoint (Slack, Teams): nothing is signed, the URL is the secret.
    """

    row: WebhookRow
    secret: str | None


class DestinationRefused(ValidationError):
    """The URL points (or resolves) somewhere a webhook must not reach."""

    def __init__(self, reason: str) -> None:
        super().__init__("url", f"refused destination: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class DestinationPolicy:
    """Which internal destinations the operator allows; every other one is refused.

    ``allow_loopback`` is the test and local-development switch
    (``LOCKBOX_WEBHOOK_ALLOW_HTTP_LOOPBACK``): loopback receivers, also over
    plain ``http://``. ``hosts`` and ``networks`` are ``LOCKBOX_WEBHOOK_ALLOW_HOSTS``:
    a listed name is trusted whatever it resolves to; an address inside a listed
    network is accepted whatever name led to it.
    """

    allow_loopback: bool = False
    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = field(default_factory=tuple)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, allow_loopback: bool | None = None
    ) -> DestinationPolicy:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in settings.webhook_allow_hosts:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(_normal_host(entry))
        loopback = (
            settings.webhook_allow_http_loopback if allow_loopback is None else allow_loopback
        )
        return cls(allow_loopback=loopback, hosts=frozenset(hosts), networks=tuple(networks))

    def trusts_host(self, host: str) -> bool:
        return _normal_host(host) in self.hosts

    def trusts_address(self, address: IPAddress) -> bool:
        if self.allow_loopback and address.is_loopback:
            return True
        return any(address.version == net.version and address in net for net in self.networks)


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _normal_host(host: str) -> str:
    return host.strip().lower().rstrip(".")


def address_problem(address: IPAddress) -> str | None:
    """Why a webhook must not connect to ``address`` (None: a public address).

    IPv4 addresses hidden in IPv6 forms (mapped ``::ffff:a.b.c.d``, NAT64,
    6to4, Teredo) are judged by the IPv4 address inside.
    """
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour
        if inner is None and address.teredo is not None:
            inner = address.teredo[1]
        if inner is None and address in _NAT64:
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None:
            found = address_problem(inner)
            return f"{found} ({inner} inside {address})" if found else None
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for label, test in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("not publicly routable", not address.is_global),
    ):
        if test:
            return f"{'an' if label[0] in 'aeiou' else 'a'} {label} address"
    return None


def parse_address(host: str) -> IPAddress | None:
    """The address a URL's host spells in standard notation; None for a name.

    A host a resolver would take for an address in a legacy notation (one
    number, octal or hex parts, fewer than four parts) is refused: it reads as
    a name to people and as, say, 127.0.0.1 to the network.
    """
    bare = host.split("%", 1)[0]  # an IPv6 zone id names an interface: link-local anyway
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host.lower()):
        try:
            legacy = ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
            spelt = f" ({host} is {legacy})"
        except OSError:
            spelt = ""
        raise ValidationError(
            "url", f"must write an IP address as four decimal numbers (a.b.c.d){spelt}"
        )
    return None


def check_host(host: str, policy: DestinationPolicy) -> IPAddress | None:
    """Refuse a host that is, by its spelling alone, somewhere a webhook must not go.

    Returns the address when the host is an IP literal (nothing to resolve), None
    for a name (whose addresses :func:`check_addresses` judges once resolved).
    """
    name = _normal_host(host)
    address = parse_address(name)
    if address is not None:
        if not policy.trusts_address(address):
            problem = address_problem(address)
            if problem is not None:
                raise DestinationRefused(f"{address} is {problem}")
        return address
    if policy.trusts_host(name):
        return None
    if name == "localhost" or name.endswith(".localhost"):
        if policy.allow_loopback:
            return None
        raise DestinationRefused(f"{name} is a loopback name")
    if name in METADATA_NAMES:
        raise DestinationRefused(f"{name} is a cloud metadata host")
    if name.endswith(INTERNAL_SUFFIXES):
        raise DestinationRefused(f"{name} is a name that exists only inside a network")
    if "." not in name:
        raise DestinationRefused(
            f"{name} is a single-label name (resolved through the local search domains)"
        )
    return None


def check_addresses(
    host: str, addresses: Sequence[str], policy: DestinationPolicy
) -> list[IPAddress]:
    """Every address ``host`` resolved to must be allowed: one bad answer refuses them all.

    (A resolver may return a public and an internal address together; a client
    that tries them in turn would reach the internal one.)
    """
    parsed = [ipaddress.ip_address(a.split("%", 1)[0]) for a in addresses]
    if not parsed:
        raise DestinationRefused(f"{host} has no address")
    if policy.trusts_host(host):
        return parsed
    for address in parsed:
        if policy.trusts_address(address):
            continue
        problem = address_problem(address)
        if problem is not None:
            raise DestinationRefused(f"{_normal_host(host)} resolves to {address}, {problem}")
    return parsed


def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's answer for ``host`` (TCP), addresses in its order, once each."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def default_port(scheme: str) -> int:
    return 443 if scheme.lower() == "https" else 80


def check_url(
    url: object, *, allow_http_loopback: bool = False, policy: DestinationPolicy | None = None
) -> str:
    """HTTPS only (plain HTTP to loopback only when explicitly allowed); no credentials in it;
    no destination that is internal by its spelling alone (names are resolved by
    :func:`check_destination`)."""
    if policy is None:
        policy = DestinationPolicy(allow_loopback=allow_http_loopback)
    if not isinstance(url, str) or not url.strip():
        raise ValidationError("url", "is required")
    url = url.strip()
    if len(url) > MAX_URL:
        raise ValidationError("url", f"must be at most {MAX_URL} characters")
    if any(ord(c) < 0x21 for c in url) or forbidden(url) is not None:
        raise ValidationError(
            "url", "must not contain spaces, control or bidirectional formatting characters"
        )
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port
    except ValueError as exc:
        raise ValidationError("url", f"is not a valid URL ({exc})") from exc
    if not host:
        raise ValidationError("url", "must name a host")
    if parts.username is not None or parts.password is not None:
        raise ValidationError("url", "must not contain credentials")
    if parts.fragment:
        raise ValidationError("url", "must not contain a fragment")
    scheme = parts.scheme.lower()
    if scheme == "http" and not (policy.allow_loopback and _is_loopback(host)):
        raise ValidationError("url", "must use https (plain http only to loopback in test setups)")
    if scheme not in ("http", "https"):
        raise ValidationError("url", "must be an https URL")
    check_host(host, policy)
    return url


def check_destination(
    url: str, policy: DestinationPolicy, resolve: Resolver = system_resolver
) -> list[IPAddress]:
    """The addresses a checked URL's host resolves to, each one allowed by ``policy``.

    Raises :class:`DestinationRefused` for an internal answer and :class:`OSError`
    (``socket.gaierror``) when the name does not resolve.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = check_host(host, policy)
    if literal is not None:
        return [literal]
    try:
        answers = resolve(host, parts.port or default_port(parts.scheme))
    except UnicodeError as exc:  # a label IDNA cannot encode: no such name
        raise socket.gaierror(socket.EAI_NONAME, f"{host} cannot be resolved ({exc})") from exc
    return check_addresses(host, answers, policy)


def _is_loopback(host: str) -> bool:
    if _normal_host(host) in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- showing URLs ----------------------------------------------------------------------------

#: Query parameters whose value is a credential (Slack-, Discord-, Teams-, SAS-style URLs).
_SECRET_PARAM = re.compile(
    r"(token|key|secret|sig|signature|auth|password|passwd|pwd|code|credential|session|hash)",
    re.IGNORECASE,
)
#: A path segment that looks like a credential rather than a word: long and random-looking
#: (``@`` for Teams' ``/webhookb2/<group>@<tenant>/…``, ``%`` for percent-encoded tokens).
_TOKENISH = re.compile(r"^[A-Za-z0-9_\-.~+=@%]{16,}$")
MASK = "…"
#: Hosts whose URLs always end in their credential, whatever it looks like: Slack's incoming
#: webhooks (``/services/T…/B…/<token>``) and workflow triggers (``/triggers/…/<token>``).
_LAST_SEGMENT_SECRET_HOSTS = frozenset({"hooks.slack.com", "hooks.slack-gov.com"})


def _secret_looking(segment: str) -> bool:
    if not _TOKENISH.match(segment):
        return False
    has_digit = any(c.isdigit() for c in segment)
    mixed = any(c.islower() for c in segment) and any(c.isupper() for c in segment)
    words = re.fullmatch(r"[a-z]+(?:[-_.][a-z]+)*", segment) is not None
    return not words and (has_digit or mixed or len(segment) >= 24)


def _masked(segment: str) -> str:
    return segment[:4] + MASK if len(segment) >= 16 else MASK


def display_url(url: str) -> str:
    """The URL as Lockbox shows it (API, CLI, pages, audit): credentials in it masked.

    Receivers often put their secret into the URL itself (Slack's
    ``/services/T…/B…/<token>``, Teams' ``…webhook.office.com/webhookb2/…/<token>``
    and Workflows' ``…logic.azure.com/workflows/<id>/…?sig=…``, ``?code=…``), and
    for a Slack or Teams endpoint the URL is the only secret there is, so a
    listing or an audit export must not hand it to whoever reads them. A path
    segment that looks like a token (16+ characters, not a plain word) keeps its
    first four characters, and so does the last segment of a Slack webhook, whatever
    it looks like; the value of a query parameter named like a credential is
    replaced. Scheme, host, port and the rest of the path stay recognisable.
    """
    try:
        parts = urlsplit(url)
        host = _normal_host(parts.hostname or "")
    except ValueError:
        return MASK
    path = parts.path.split("/")
    last = max((i for i, segment in enumerate(path) if segment), default=-1)
    always = host in _LAST_SEGMENT_SECRET_HOSTS and last >= 2
    segments = [
        _masked(segment) if _secret_looking(segment) or (always and i == last) else segment
        for i, segment in enumerate(path)
    ]
    pairs = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        hidden = _SECRET_PARAM.search(name) is not None or _secret_looking(value)
        pairs.append(f"{quote(name, safe='')}={MASK if hidden else quote(value, safe='')}")
    query = "&".join(pairs)
    return urlunsplit((parts.scheme, parts.netloc, "/".join(segments), query, ""))


def check_format(value: object) -> WebhookFormat:
    """The format an endpoint is registered with; None means ``standard``."""
    if value is None:
        return WebhookFormat.STANDARD
    if isinstance(value, WebhookFormat):
        return value
    if isinstance(value, str) and value.strip().lower() in FORMATS:
        return WebhookFormat(value.strip().lower())
    raise ValidationError("format", f"must be one of {', '.join(FORMATS)}")


def check_events(events: object) -> list[str]:
    if events is None:
        return ["*"]
    if not isinstance(events, list | tuple) or not all(isinstance(e, str) for e in events):
        raise ValidationError("events", "must be a list of event types")
    cleaned = list(dict.fromkeys(e.strip() for e in events if e.strip()))
    if not cleaned:
        return ["*"]
    unknown = [e for e in cleaned if e != "*" and e not in EVENT_TYPES]
    if unknown:
        raise ValidationError(
            "events",
            f"unknown event type {unknown[0]!r}; use '*' or one of {', '.join(EVENT_TYPES)}",
        )
    return ["*"] if "*" in cleaned else cleaned


def _target_tenant(tx: Tx, actor: Principal, tenant: str | None) -> str | None:
    """The tenant id an operation is about; None means provider level."""
    if tenant is None and actor.side is Side.CUSTOMER:
        tenant = actor.tenant_id
    if tenant is None:
        if not allows(actor, Intent.WEBHOOK_MANAGE, None):
            raise PermissionDenied("your roles do not allow webhook.manage at provider level")
        return None
    found = load_tenant(tx, actor, tenant)
    authorize(actor, Intent.WEBHOOK_MANAGE, kind="webhook", tenant_id=found.id)
    return found.id


def register(
    app: Lockbox,
    actor: Principal,
    *,
    url: object,
    events: object = None,
    tenant: str | None = None,
    format: object = None,
    allow_http_loopback: bool | None = None,
    resolve: Resolver | None = None,
    policy: DestinationPolicy | None = None,
) -> RegisteredWebhook:
    """Register an endpoint; ``allow_http_loopback`` (and ``policy``, the allowed internal
    destinations) default to the deployment's settings.

    ``format``: ``standard`` (default; signed JSON, its secret returned once), ``slack``
    or ``teams`` (chat messages; no secret: the returned ``secret`` is None).

    The URL's host is resolved (``resolve``, the system's resolver by default) and
    refused if any answer is internal (see the module docstring). A name that
    does not resolve (yet) is accepted: there is nothing to connect to, and every
    delivery checks again.
    """
    if policy is None:
        policy = DestinationPolicy.from_settings(get_settings(), allow_loopback=allow_http_loopback)
    clean_url = check_url(url, policy=policy)
    clean_events = check_events(events)
    clean_format = check_format(format)
    optional_id(tenant, "tenant", "tenant")
    with contextlib.suppress(OSError):  # no answer now (a typo, DNS not set up yet): delivery says
        check_destination(clean_url, policy, resolve or system_resolver)
    secret = new_secret() if clean_format.signed else None
    with app.tx() as tx:
        tenant_id = _target_tenant(tx, actor, tenant)
        row = WebhookRow(
            id=new_id("webhook"),
            tenant_id=tenant_id,
            url=clean_url,
            secret=secret or "",  # a chat endpoint signs nothing
            events=clean_events,
            active=True,
            created_at=tx.now,
            created_by=actor.id,
            format=clean_format.value,
        )
        store.insert_webhook(tx.conn, row)
        # Provider-level endpoints hear every tenant: the provider's own chain records them.
        tx.audit(
            tenant_id=tenant_id or PROVIDER_CHAIN,
            actor=actor,
            operation="webhook.create",
            details={
                "webhook_id": row.id,
                "url": display_url(clean_url),
                "events": clean_events,
                "format": clean_format.value,
            },
        )
    return RegisteredWebhook(row=row, secret=secret)


def list_webhooks(app: Lockbox, actor: Principal, *, tenant: str | None = None) -> list[WebhookRow]:
    """Endpoints the caller manages: one tenant's, or (provider admin) all of them."""
    with app.read() as tx:
        if tenant is not None or actor.side is Side.CUSTOMER:
            tenant_id = _target_tenant(tx, actor, tenant)
            return store.list_webhooks(
                tx.conn, tenant_id=tenant_id, provider_level=tenant_id is None, any_tenant=False
            )
        if Scope.ANY_TENANT not in scopes(actor, Intent.WEBHOOK_MANAGE):
            raise PermissionDenied("your roles do not allow webhook.manage")
        return store.list_webhooks(tx.conn, tenant_id=None, provider_level=True, any_tenant=True)


def _load(tx: Tx, actor: Principal, webhook_id: str) -> WebhookRow:
    validate_id(webhook_id, "webhook", "webhook_id")
    hook = store.get_webhook(tx.conn, webhook_id)
    if hook is None:
        raise NotFound("webhook not found")
    if not allows(actor, Intent.WEBHOOK_MANAGE, hook.tenant_id):
        raise NotFound("webhook not found")  # another tenant's endpoint: indistinguishable
    return hook


def get_webhook(app: Lockbox, actor: Principal, webhook_id: str) -> WebhookRow:
    with app.read() as tx:
        return _load(tx, actor, webhook_id)


def delete_webhook(app: Lockbox, actor: Principal, webhook_id: str) -> WebhookRow:
    """Remove an endpoint; deliveries still queued for it are skipped."""
    with app.tx() as tx:
        hook = _load(tx, actor, webhook_id)
        if not store.delete_webhook(tx.conn, hook.id):
            raise NotFound("webhook not found")  # a concurrent delete won (PostgreSQL)
        tx.audit(
            tenant_id=hook.tenant_id or PROVIDER_CHAIN,
            actor=actor,
            operation="webhook.delete",
            details={"webhook_id": hook.id, "url": display_url(hook.url)},
        )
    return hook


def view(hook: WebhookRow) -> dict[str, object]:
    """JSON-ready, without the secret, and with any credential in the URL masked."""
    return {
        "id": hook.id,
        "tenant_id": hook.tenant_id,
        "url": display_url(hook.url),
        "format": hook.format,
        "events": list(hook.events),
        "active": hook.active,
        "created_at": format_instant(hook.created_at),
        "created_by": hook.created_by,
    }
