"""Tenants: the customers whose content the lockbox protects."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from lockbox.domain import text
from lockbox.domain.errors import ValidationError
from lockbox.domain.policy import LockboxPolicy

_SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN_RE = re.compile(rf"^(?:{_LABEL}\.)+[a-z]{{2,63}}$")
MAX_DOMAINS = 50


def validate_domain(value: object, field: str = "domain") -> str:
    """A DNS name such as ``contoso.com`` (lower-cased); no wildcards, no trailing dot."""
    if not isinstance(value, str):
        raise ValidationError(field, "must be a domain name such as contoso.com")
    cleaned = value.strip().lower()
    if len(cleaned) > 253 or not _DOMAIN_RE.fullmatch(cleaned):
        raise ValidationError(field, f"{value!r} is not a domain name such as contoso.com")
    return cleaned


def validate_domains(values: object, field: str = "email_domains") -> tuple[str, ...]:
    if not isinstance(values, list | tuple):
        raise ValidationError(field, "must be a list of domain names")
    if len(values) > MAX_DOMAINS:
        raise ValidationError(field, f"at most {MAX_DOMAINS} domains")
    return tuple(dict.fromkeys(validate_domain(v, f"{field}[{i}]") for i, v in enumerate(values)))


def validate_slug(value: object, field: str = "slug") -> str:
    if not isinstance(value, str) or not _SLUG_RE.fullmatch(value):
        raise ValidationError(
            field, "must be 1-63 lower-case letters, digits or '-', not starting/ending with '-'"
        )
    return value


@dataclass(frozen=True)
class Tenant:
    id: str
    slug: str
    name: str
    policy: LockboxPolicy
    created_at: datetime
    version: int = 1
    #: The e-mail domains of the customer's people: its admins add users only there.
    email_domains: tuple[str, ...] = ()

    def owns_address(self, email: str) -> bool:
        return email.rpartition("@")[2].lower() in self.email_domains

    @staticmethod
    def validate_name(value: object) -> str:
        return text.required_text(value, "name", max_len=text.NAME_MAX, multiline=False)
