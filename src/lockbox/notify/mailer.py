"""Sending e-mail over SMTP (``smtplib``), configured from :class:`lockbox.config.Settings`."""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from email.message import EmailMessage
from typing import Protocol

from lockbox.config import Settings

SECURITY_MODES = ("none", "starttls", "tls")
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None: ...
    def close(self) -> None: ...


class SmtpMailer:
    """One SMTP connection, opened on first use and reused for a batch.

    Any error closes the connection (the next send reconnects) and propagates,
    so the dispatcher can count the attempt and retry later.
    """

    def __init__(self, settings: Settings) -> None:
        if settings.smtp_security not in SECURITY_MODES:
            raise ValueError(
                f"LOCKBOX_SMTP_SECURITY must be one of {', '.join(SECURITY_MODES)}, "
                f"not {settings.smtp_security!r}"
            )
        if (
            settings.smtp_username
            and settings.smtp_security == "none"
            and settings.smtp_host not in _LOOPBACK
        ):
            raise ValueError(
                "LOCKBOX_SMTP_USERNAME is set but LOCKBOX_SMTP_SECURITY is 'none': refusing to "
                "send the SMTP password in clear text to a remote host; use starttls or tls"
            )
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        context = ssl.create_default_context(cafile=str(s.smtp_ca_file) if s.smtp_ca_file else None)
        smtp: smtplib.SMTP
        if s.smtp_security == "tls":
            smtp = smtplib.SMTP_SSL(
                s.smtp_host, s.smtp_port, timeout=s.smtp_timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout)
        try:
            smtp.ehlo()
            if s.smtp_security == "starttls":
                smtp.starttls(context=context)
                smtp.ehlo()
            if s.smtp_username:
                password = s.smtp_password.get_secret_value() if s.smtp_password else ""
                smtp.login(s.smtp_username, password)
        except BaseException:
            _quietly_close(smtp)
            raise
        return smtp

    def send(self, message: EmailMessage) -> None:
        if self._smtp is None:
            self._smtp = self._connect()
        try:
            refused = self._smtp.send_message(message)
        except BaseException:
            self.close()
            raise
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)

    def close(self) -> None:
        if self._smtp is not None:
            smtp, self._smtp = self._smtp, None
            try:
                smtp.quit()
            except Exception:
                _quietly_close(smtp)


def _quietly_close(smtp: smtplib.SMTP) -> None:
    with contextlib.suppress(Exception):  # closing a broken connection; nothing to report
        smtp.close()
