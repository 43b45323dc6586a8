"""Delivering webhook events: a signed JSON POST (Standard Webhooks headers), or a chat
message for a Slack or Microsoft Teams incoming webhook (:mod:`lockbox.notify.chat`,
unsigned: those services check no signature, the URL itself is the credential).

Every delivery resolves the endpoint's host **once**, checks every address
the answer holds (:func:`lockbox.service.webhooks.check_destination`: nothing
internal unless the operator allow-listed it), and then connects only to the
addresses it checked: the request goes to ``https://<address>/…`` with the
original ``Host`` header, and TLS uses the original name for SNI and for
certificate verification (httpx's ``sni_hostname`` extension). A name that
answers with a public address when checked and an internal one a moment later
(DNS rebinding) cannot steer the connection, because nothing resolves it a
second time. Keep-alive is off, so a connection opened for one name is never
reused for another name served from the same address.

A failure is reported as a *category* ("connection refused", "TLS error",
"timeout", "HTTP 500", "refused destination", …), which is what the outbox
records and shows: the raw socket error (which would tell whoever registered
the URL what answers on which port inside the network) goes only to the
worker's log.
"""

from __future__ import annotations

import json
import ssl
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx

from lockbox.domain.errors import ValidationError
from lockbox.notify import chat
from lockbox.sdk.webhooks import sign
from lockbox.service.webhooks import (
    DestinationPolicy,
    DestinationRefused,
    IPAddress,
    Resolver,
    check_destination,
    check_url,
    system_resolver,
)

#: Every category a failed delivery is reported as (besides ``HTTP <status>``).
CATEGORIES = (
    "refused destination",
    "DNS error",
    "connection refused",
    "TLS error",
    "timeout",
    "connection failed",
    "unsupported format",
)


class WebhookError(Exception):
    """The endpoint did not accept the delivery (network error or non-2xx answer).

    ``category`` is what customers and the outbox see; ``detail`` the exact
    cause, for the worker's log only. ``permanent``: retrying cannot help (a
    refused destination stays refused until someone changes the URL or the
    allow-list, and then the message can be re-sent from the outbox).
    """

    def __init__(self, category: str, detail: str = "", *, permanent: bool = False) -> None:
        super().__init__(category)
        self.category = category
        self.detail = detail or category
        self.permanent = permanent


def body_bytes(payload: dict[str, Any]) -> bytes:
    """The exact bytes that are signed and sent: compact, key-sorted JSON."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def headers(msg_id: str, secret: str, body: bytes, now: datetime) -> dict[str, str]:
    timestamp = int(now.timestamp())
    return {
        "content-type": "application/json",
        "user-agent": "Lockbox-Webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def chat_headers() -> dict[str, str]:
    """Headers of a Slack or Teams delivery: JSON, and no signature (nobody would check it)."""
    return {"content-type": "application/json", "user-agent": "Lockbox-Webhooks/1"}


def build_request(
    fmt: str,
    msg_id: str,
    payload: dict[str, Any],
    *,
    secret: str,
    signed_at: datetime,
    now: datetime,
    provider_name: str = "Your provider",
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one delivery in the endpoint's format ``fmt``.

    ``standard``: the payload itself, signed with ``secret`` at ``signed_at`` (real
    time, for the receiver's replay check). ``slack`` / ``teams``: the chat message
    rendered from the same payload, deadlines relative to ``now`` (the time of
    sending, like e-mails). Another format is a permanent failure.
    """
    if fmt == "standard":
        body = body_bytes(payload)
        return body, headers(msg_id, secret, body, signed_at)
    if fmt not in chat.CHAT_FORMATS:
        raise WebhookError("unsupported format", f"unknown webhook format {fmt!r}", permanent=True)
    message = chat.render(fmt, payload, now, provider_name=provider_name)
    return body_bytes(message), chat_headers()


class WebhookSender(Protocol):
    def post(self, url: str, body: bytes, headers: dict[str, str]) -> None: ...
    def close(self) -> None: ...


def pinned_request(url: str, address: IPAddress) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``url`` rewritten to connect to ``address``, the ``Host`` header and the TLS extensions.

    The path and query are kept byte for byte; the port is the URL's (or the
    scheme's default). For https to a name, SNI and certificate verification use
    the name, so pinning the address changes where we connect, not whom we trust.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    target = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    host_header = parts.netloc.rsplit("@", 1)[-1]
    extensions: dict[str, Any] = {}
    if parts.scheme.lower() == "https" and host.strip("[]") != str(address):
        extensions["sni_hostname"] = host
    return target, {"host": host_header}, extensions


def categorise(exc: BaseException) -> str:
    """The category of a transport failure, from the exception and its causes."""
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError | ssl.CertificateError):
            return "TLS error"
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, TimeoutError):
            return "timeout"
        text = str(current)
        if "CERTIFICATE_VERIFY_FAILED" in text or "[SSL" in text:
            return "TLS error"
        if "Connection refused" in text or "[Errno 111]" in text:
            return "connection refused"
        current = current.__cause__ or current.__context__
    return "connection failed"


class HttpxWebhookSender:
    """POSTs with a timeout; redirects are not followed (the registered URL is the one signed for).

    ``policy`` says which internal destinations are allowed (default: none);
    ``resolve`` is the name resolver (the system's by default; tests inject a
    stub); ``verify`` the TLS trust (the system's store by default).
    """

    def __init__(
        self,
        timeout: float,
        *,
        policy: DestinationPolicy | None = None,
        resolve: Resolver | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.policy = policy or DestinationPolicy()
        self.resolve: Resolver = resolve or system_resolver
        self._client = httpx.Client(
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            verify=verify,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def destinations(self, url: str) -> list[IPAddress]:
        """Check ``url`` and resolve its host once: the addresses it may be delivered to."""
        try:
            check_url(url, policy=self.policy)
            return check_destination(url, self.policy, self.resolve)
        except DestinationRefused as exc:
            raise WebhookError("refused destination", exc.message, permanent=True) from exc
        except OSError as exc:
            raise WebhookError("DNS error", f"{type(exc).__name__}: {exc}") from exc
        except ValidationError as exc:  # a URL that no longer passes the rules
            raise WebhookError("refused destination", exc.message, permanent=True) from exc

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        """Deliver to the first checked address that takes the connection.

        Like a client resolving the name itself, the next address is tried only
        when connecting fails (``localhost`` may answer ``::1`` first while the
        receiver listens on 127.0.0.1); every one of them passed the check.
        """
        response: httpx.Response | None = None
        failure: httpx.HTTPError | None = None
        for address in self.destinations(url):
            target, host, extensions = pinned_request(url, address)
            try:
                response = self._client.post(
                    target, content=body, headers={**headers, **host}, extensions=extensions
                )
                break
            except httpx.ConnectError as exc:
                failure = exc
            except httpx.HTTPError as exc:
                raise WebhookError(categorise(exc), f"{type(exc).__name__}: {exc}") from exc
        if response is None:
            cause = failure or httpx.ConnectError("no address to connect to")
            raise WebhookError(categorise(cause), f"{type(cause).__name__}: {cause}") from cause
        if not 200 <= response.status_code < 300:
            raise WebhookError(f"HTTP {response.status_code}")

    def close(self) -> None:
        self._client.close()
