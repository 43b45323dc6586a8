"""Tenants: the customers whose content the lockbox protects."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from lockbox.domain import text
from lockbox.domain.errors import ValidationError
from lockbox.domain.policy import LockboxPolicy

_SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def validate_slug(value: object, field: str = "slug") -> str:
    if not isinstance(value, str) or not _SLUG_RE.match(value):
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

    @staticmethod
    def validate_name(value: object) -> str:
        return text.required_text(value, "name", max_len=text.NAME_MAX, multiline=False)
