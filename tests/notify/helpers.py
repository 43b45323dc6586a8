"""Test servers on loopback (SMTP via aiosmtpd, a webhook receiver) and scenario helpers."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from lockbox.config import Settings
from lockbox.domain.roles import Principal
from lockbox.service import cases, requests
from lockbox.service.app import Lockbox
from lockbox.store import outbox as store

MAILBOX = "exchange/mailbox/alice@contoso.com"
LINKISH = ("http", "www.", "<a ")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Received:
    rcpt: list[str]
    message: EmailMessage

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


@dataclass
class Collector:
    """aiosmtpd handler that keeps every message; ``delay`` makes the server slow to answer."""

    delay: float = 0.0
    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if self.delay:
            await asyncio.sleep(self.delay / 2)  # slow before the message is in (kills: no mail)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        with self.lock:
            self.messages.append(Received(list(envelope.rcpt_tos), msg))
        if self.delay:
            await asyncio.sleep(self.delay / 2)  # the message is in, the 250 is not (duplicates)
        return "250 OK"

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.messages)


class SmtpServer:
    def __init__(self, port: int | None = None, delay: float = 0.0) -> None:
        self.port = port or free_port()
        self.collector = Collector(delay=delay)
        self.controller: Controller | None = None

    def start(self) -> SmtpServer:
        self.controller = Controller(self.collector, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def smtp_settings(port: int, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_security": "none",
        "smtp_timeout": 5.0,
        "mail_from": "Lockbox <lockbox@provider.test>",
        "webhook_allow_http_loopback": True,
        "webhook_timeout": 5.0,
    }
    values.update(extra)
    return Settings(**values)


@dataclass
class Hit:
    body: bytes
    headers: dict[str, str]


class WebhookReceiver:
    """A loopback HTTP endpoint; ``answer`` decides the status code for each delivery."""

    def __init__(self, answer: Callable[[Hit], int] | None = None) -> None:
        self.hits: list[Hit] = []
        self.answer = answer or (lambda _hit: 204)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                hit = Hit(self.rfile.read(length), {k.lower(): v for k, v in self.headers.items()})
                receiver.hits.append(hit)
                self.send_response(receiver.answer(hit))
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def start(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def submit(app: Lockbox, engineer: Principal, justification: str = "Inspect the sync state") -> str:
    case = cases.open_case(app, engineer, tenant="contoso", title="Mailbox does not sync")
    req = requests.submit_request(
        app,
        engineer,
        tenant="contoso",
        case_id=case.id,
        resources=[MAILBOX],
        access_level="read",
        justification=justification,
    )
    return req.id


def rows(app: Lockbox, status: str | None = None) -> list[store.OutboxRow]:
    with app.read() as tx:
        return store.list_rows(tx.conn, status=status, limit=10_000)


def assert_no_links(*texts: str) -> None:
    for text in texts:
        lowered = text.lower()
        for bad in LINKISH:
            assert bad not in lowered, f"{bad!r} found in: {text[:500]}"
