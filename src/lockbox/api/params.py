"""Path and query parameter types shared by the routers, and the ETag helpers.

Every identifier in a path or query is bounded and free of control
characters before it reaches a use case: a NUL would make PostgreSQL fail
with a 500, and an unbounded string is a cheap denial of service.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, TypeVar

from fastapi import Header, Path, Query
from pydantic import AfterValidator, AwareDatetime

from lockbox.api.problems import PreconditionFailed
from lockbox.domain.errors import Conflict, ValidationError

LINE = r"^[^\x00-\x1f\x7f]+$"
ID = r"^[A-Za-z0-9_-]{1,80}$"

TenantRef = Annotated[
    str, Path(description="Tenant slug or id.", min_length=1, max_length=80, pattern=ID)
]
UserRef = Annotated[
    str, Path(description="User id or e-mail address.", min_length=1, max_length=320, pattern=LINE)
]
RequestId = Annotated[str, Path(description="Access request id (req_…).", pattern=ID)]
CaseId = Annotated[str, Path(description="Support case id (case_…).", pattern=ID)]
TokenId = Annotated[str, Path(description="API token id (tok_…).", pattern=ID)]


def ref_query(description: str) -> object:
    return Query(description=description, min_length=1, max_length=320, pattern=LINE)


def id_query(description: str) -> object:
    return Query(description=description, min_length=1, max_length=80, pattern=ID)


def _utc(value: datetime) -> datetime:
    """An aware time converted to UTC; one that has no UTC equivalent is out of range."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None


#: A time with a time zone that exists in UTC (``9999-12-31T23:59:59-23:00`` does not).
Instant = Annotated[AwareDatetime, AfterValidator(_utc)]
WebhookId = Annotated[str, Path(description="Webhook id (whk_…).", pattern=ID)]
MessageId = Annotated[str, Path(description="Outbox message id (msg_…).", pattern=ID)]


IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='Act only if the object is still at this version (the ETag you read, e.g. "3").',
        max_length=200,
    ),
]

_TAG = re.compile(r'^\s*(?:W/)?"(\d{1,18})"\s*$')


def etag(version: int) -> str:
    """A strong entity tag for an object version."""
    return f'"{version}"'


def parse_if_match(value: str | None) -> int | None:
    """The version an ``If-Match`` header names; None when absent or ``*``."""
    if value is None or value.strip() == "*":
        return None
    match = _TAG.match(value)
    if match is None:
        raise ValidationError("If-Match", 'must be one entity tag such as "3" (from ETag)')
    return int(match.group(1))


T = TypeVar("T")


@contextmanager
def precondition(expected: int | None) -> Iterator[None]:
    """With ``If-Match``, a lost version check is 412 Precondition Failed, not 409."""
    try:
        yield
    except PreconditionFailed:
        raise
    except Conflict as exc:
        if expected is None:
            raise
        raise PreconditionFailed(exc.message, **exc.extra) from exc


def conditional(if_match: str | None, action: Callable[[int | None], T]) -> T:
    expected = parse_if_match(if_match)
    with precondition(expected):
        return action(expected)
