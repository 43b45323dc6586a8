"""Runtime configuration, from environment variables (prefix ``LOCKBOX_``).

One settings object for every process (server, worker, CLI), so a variable
means the same thing everywhere. Secrets (SMTP password) are ``SecretStr`` and
never printed.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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

    # -- the grant feed (resource services) --
    #: A heartbeat event at least this often, so a follower can tell a quiet feed from a dead one.
    feed_heartbeat_seconds: float = Field(default=5.0, ge=0.05, le=300)
    #: How often each server process looks for new grant changes to push.
    feed_poll_seconds: float = Field(default=0.1, ge=0.01, le=10)

    # -- access tokens --
    access_token_audience: str = "lockbox-resource"
    access_token_ttl_seconds: int = 300
    issuer: str = "lockbox"

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

    def clock(self) -> Clock:
        if self.test_clock_file is not None:
            return OffsetFileClock(self.test_clock_file)
        return SystemClock()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
