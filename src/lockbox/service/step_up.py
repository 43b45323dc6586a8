"""Step-up: what grants access needs a recent proof of presence, checked in the service.

Adapters cannot skip it: :func:`require_recent` runs inside the use cases that grant
or take away access (deciding, revoking, the policy, roles) and those that weaken how a
person signs in (removing a second factor, renewing recovery codes), so a page, the API
or the CLI reach the same check. Only sessions carry an authentication time; API tokens and
the local CLI are not sessions and are never asked (see :mod:`lockbox.domain.authn`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from lockbox.config import get_settings
from lockbox.domain import authn
from lockbox.domain.errors import StepUpRequired
from lockbox.domain.roles import Principal


def max_age() -> timedelta:
    """``LOCKBOX_STEP_UP_SECONDS`` (5 minutes unless configured)."""
    return timedelta(seconds=get_settings().step_up_seconds)


def require_recent(actor: Principal, now: datetime, what: str) -> None:
    """Refuse with :class:`StepUpRequired` when a session's sign-in is older than allowed."""
    if authn.needs_step_up(actor, now, max_age()):
        seconds = int(max_age().total_seconds())
        minutes = max(1, seconds // 60)
        raise StepUpRequired(
            f"to {what}, confirm it's you: your last sign-in was more than {minutes} min ago",
            max_age=seconds,
        )
