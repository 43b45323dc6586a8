"""Runtime configuration, from environment variables (prefix ``LOCKBOX_``).

One settings object for every process (server, worker, CLI), so a variable
means the same thing everywhere. Secrets (SMTP password) are ``SecretStr`` and
never printed.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from lockbox.clock import Clock, OffsetFileClock, SystemClock


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOCKBOX_", extra="ignore")

    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: per-user SQLite file"
    )
    #: Tests only: system time plus the offset (seconds) in this file.
    test_clock_file: Path | None = None

    # -- e-mail (SMTP) --
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_security: str = Field(default="none", description="none | starttls | tls")
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout: float = 10.0
    #: CA bundle to trust for the SMTP server's certificate (an internal relay);
    #: default: the system's trust store. Certificates are always verified.
    smtp_ca_file: Path | None = None
    mail_from: str = "Lockbox <lockbox@lockbox.localhost>"
    #: Right-hand side of every ``Message-ID`` (``<msg_…@DOMAIN>``), stable per outbox row.
    message_id_domain: str = "lockbox"

    # -- outbox delivery and the worker --
    outbox_max_attempts: int = Field(default=8, ge=1, le=100)
    outbox_backoff_base_seconds: float = Field(default=30.0, gt=0)
    outbox_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    outbox_lease_seconds: float = Field(default=120.0, gt=0)
    worker_interval_seconds: float = Field(default=15.0, gt=0)
    worker_batch_size: int = Field(default=50, ge=1, le=1000)

    # -- webhooks --
    webhook_timeout: float = 10.0
    #: Tests and local development only: also accept ``http://`` to 127.0.0.1 / localhost.
    webhook_allow_http_loopback: bool = False
    #: Internal webhook destinations the operator vouches for: host names (exact) and IP
    #: networks (CIDR). Everything else that is, or resolves to, a loopback, private,
    #: link-local, multicast, reserved or metadata address is refused. Comma-separated
    #: (``hooks.corp.example,10.20.0.0/16``) or a JSON list.
    webhook_allow_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # -- rate limits (``limits`` notation: "6000/minute", "100/second;5000/hour") --
    #: Off only for benchmarks and load tests of the service itself.
    rate_limit_enabled: bool = True
    #: Where counters live: ``memory://`` counts per server process (N processes allow N
    #: times the limits); ``redis://host:6379`` shares them across processes and hosts.
    rate_limit_storage: str = "memory://"
    #: Sign-in, password reset: per client address (these callers have no token yet).
    rate_limit_signin: str = "30/minute"
    #: Token issue (``POST /v1/access/token``, ``POST /v1/tokens``, ``/account/tokens``).
    rate_limit_token_issue: str = "60/minute"
    rate_limit_token_issue_per_address: str = "300/minute"
    #: Decisions of resource services (access checks, reported events, feed connections).
    rate_limit_decisions: str = "6000/minute"
    rate_limit_decisions_per_address: str = "20000/minute"
    #: Everything else (the API and the pages), per token or session, and per address.
    rate_limit_default: str = "1200/minute"
    rate_limit_default_per_address: str = "6000/minute"

    # -- the admin center (web pages) --
    #: The provider's own name, as customers know it: pages and e-mails say
    #: "Acme Cloud's support engineer asks…".
    provider_name: str = Field(default="Your provider", min_length=1, max_length=100)
    #: The admin center's public address, shown as plain text (never as a link) in e-mails.
    public_address: str | None = Field(default=None, max_length=200)
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_max_hours: int = Field(default=12, ge=1, le=24 * 14)
    #: ``auto``: ``Secure`` + ``__Host-`` cookies when the request came over HTTPS;
    #: ``true`` always (behind a TLS proxy that does not say so); ``false`` for local HTTP.
    cookie_secure: str = Field(default="auto", pattern=r"^(auto|true|false)$")
    signin_account_limit: int = Field(default=5, ge=1, le=1000)
    signin_ip_limit: int = Field(default=20, ge=1, le=100000)
    signin_window_minutes: int = Field(default=15, ge=1, le=24 * 60)
    signin_lockout_minutes: int = Field(default=15, ge=1, le=24 * 60)
    #: Approving, revoking, changing the policy or roles, removing a second factor or making
    #: new recovery codes through a session needs a sign-in (or a re-authentication) at most
    #: this old; API tokens are not sessions and not subject.
    step_up_seconds: int = Field(default=300, ge=10, le=24 * 3600)

    # -- the grant feed (resource services) --
    #: A heartbeat event at least this often, so a follower can tell a quiet feed from a dead one.
    feed_heartbeat_seconds: float = Field(default=5.0, ge=0.05, le=300)
    #: How often each server process looks for new grant changes to push.
    feed_poll_seconds: float = Field(default=0.1, ge=0.01, le=10)

    # -- the online check --
    #: At most this many online checks run at once in a server process; the rest wait
    #: their turn. A check is a few short statements, and each gives up and takes back
    #: Python's global lock: with dozens of threads doing that, switching between them
    #: costs more than the checks (docs/performance.md). Unset: 1 on SQLite (one thread
    #: is fastest), 4 on PostgreSQL (a few hide the round trips); raise it for a database
    #: whose round trips are slow (PostgreSQL on another host).
    check_concurrency: int | None = Field(default=None, ge=1, le=64)

    # -- access tokens --
    access_token_audience: str = "lockbox-resource"
    access_token_ttl_seconds: int = 300
    issuer: str = "lockbox"

    # -- operations: metrics and reverse proxies (docs/deploy.md) --
    #: Bearer token that opens ``GET /metrics``. Unset: ``/metrics`` answers 404, exactly
    #: like a path that does not exist (or scrape ``lockbox serve --metrics-port`` instead).
    metrics_token: SecretStr | None = None
    #: Comma-separated addresses or networks (CIDR) of the reverse proxies whose
    #: ``X-Forwarded-For`` / ``X-Forwarded-Proto`` are believed; unset: forwarded headers
    #: are ignored and the client address is the TCP peer's.
    forwarded_allow_ips: str | None = None

    @field_validator("metrics_token")
    @classmethod
    def _strong_metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        """An empty token means "unset"; a short one is refused at start-up, not guessed later."""
        if value is None or value.get_secret_value() == "":
            return None
        if len(value.get_secret_value()) < 16:
            raise ValueError("use at least 16 characters")
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxy_addresses(cls, value: str | None) -> str | None:
        """Refuse a misspelt proxy address at start-up: uvicorn would silently never match it."""
        if value is None or not value.strip():
            return None
        return normalise_proxy_addresses(value)

    @field_validator("mail_from")
    @classmethod
    def _valid_sender(cls, value: str) -> str:
        """Refuse an unusable sender at start-up instead of parking every e-mail later."""
        from lockbox.notify.render import InvalidAddress, address

        try:
            address(value)
        except InvalidAddress as exc:
            raise ValueError(f"LOCKBOX_MAIL_FROM: {exc}") from None
        return value

    @field_validator("webhook_allow_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        """Accept ``a,b`` as well as a JSON list, so the variable is easy to write by hand."""
        if isinstance(value, str):
            stripped = value.strip()
            if stripped.startswith("["):
                import json

                return json.loads(stripped)
            return [part for part in stripped.replace(" ", ",").split(",") if part]
        return value

    @field_validator("webhook_allow_hosts")
    @classmethod
    def _valid_hosts(cls, value: list[str]) -> list[str]:
        """Refuse an entry that is neither a network nor a plain host name at start-up."""
        cleaned = []
        for entry in value:
            item = entry.strip().lower().rstrip(".")
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                if not item or not all(c.isalnum() or c in "-." for c in item):
                    raise ValueError(
                        f"LOCKBOX_WEBHOOK_ALLOW_HOSTS: {entry!r} is neither a host name nor a CIDR"
                    ) from None
            cleaned.append(item)
        return cleaned

    @field_validator(
        "rate_limit_signin",
        "rate_limit_token_issue",
        "rate_limit_token_issue_per_address",
        "rate_limit_decisions",
        "rate_limit_decisions_per_address",
        "rate_limit_default",
        "rate_limit_default_per_address",
    )
    @classmethod
    def _valid_rate(cls, value: str) -> str:
        """A typo in a limit stops the server at start, not at the first request."""
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a rate limit such as '6000/minute' or '10/second;500/hour'"
            ) from None
        return value

    @field_validator("rate_limit_storage")
    @classmethod
    def _valid_storage(cls, value: str) -> str:
        if "://" not in value:
            raise ValueError("must be a storage URI such as memory:// or redis://host:6379")
        return value

    def clock(self) -> Clock:
        if self.test_clock_file is not None:
            return OffsetFileClock(self.test_clock_file)
        return SystemClock()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def normalise_proxy_addresses(value: str) -> str:
    """``*`` or comma-separated IP addresses / networks, normalised; ValueError otherwise."""
    import ipaddress

    items = [item.strip() for item in value.split(",") if item.strip()]
    if items == ["*"]:
        return "*"
    for item in items:
        try:
            if "/" in item:
                ipaddress.ip_network(item, strict=False)
            else:
                ipaddress.ip_address(item)
        except ValueError:
            raise ValueError(
                f"{item!r} is not an IP address or network (use '*' alone to trust every peer)"
            ) from None
    return ",".join(items)
