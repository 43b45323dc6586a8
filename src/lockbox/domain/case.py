"""Support cases: every access request hangs off one, and closing it ends them all."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from lockbox.domain.errors import InvalidTransition


class CaseStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class SupportCase:
    id: str
    tenant_id: str
    title: str
    engineer_id: str
    status: CaseStatus
    opened_at: datetime
    opened_by: str
    reference: str | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None

    def close(self, actor_id: str, now: datetime) -> SupportCase:
        if self.status is CaseStatus.CLOSED:
            raise InvalidTransition("the support case is already closed", state="closed")
        return replace(self, status=CaseStatus.CLOSED, closed_at=now, closed_by=actor_id)
