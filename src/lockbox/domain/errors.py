"""Domain errors.

Every refusal of the core is a specific subclass of :class:`LockboxError`, so
adapters can map it to one HTTP status / exit code without inspecting
messages, and users get a message that says exactly why.
"""

from __future__ import annotations

from typing import Any, TypeVar

_T = TypeVar("_T")


class LockboxError(Exception):
    """Base class of every refusal; ``code`` is stable and machine-readable."""

    code = "lockbox_error"
    title = "Request refused"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class ValidationError(LockboxError):
    """Input is malformed or out of range; ``field`` names the offending input."""

    code = "validation_error"
    title = "Invalid input"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", field=field)
        self.field = field


class NotFound(LockboxError):
    """The object does not exist *or* the actor may not know it exists.

    Both cases use the same error on purpose: a foreign tenant's id must be
    indistinguishable from a missing one.
    """

    code = "not_found"
    title = "Not found"


class PermissionDenied(LockboxError):
    """The actor can see the object but their roles do not allow the intent."""

    code = "permission_denied"
    title = "Not permitted"


class SeparationOfDuties(PermissionDenied):
    """The actor holds the role but is the wrong person (e.g. reviewing their own request)."""

    code = "separation_of_duties"
    title = "Separation of duties"


class AuthenticationFailed(LockboxError):
    """No valid credential was presented."""

    code = "authentication_failed"
    title = "Authentication required"


class InvalidTransition(LockboxError):
    """The request is in a state from which this event is not allowed."""

    code = "invalid_state"
    title = "Not allowed in the current state"

    def __init__(self, message: str, *, state: str) -> None:
        super().__init__(message, state=state)
        self.state = state


class DeadlinePassed(InvalidTransition):
    """The deadline of the current stage has passed; the request reads as expired/ended."""

    code = "deadline_passed"
    title = "Deadline passed"


class AlreadyDecided(InvalidTransition):
    """This approver has already recorded a decision on this request."""

    code = "already_decided"
    title = "Already decided"


class Conflict(LockboxError):
    """Another change won the race (optimistic concurrency); reload and retry."""

    code = "conflict"
    title = "Conflicting update"


class AlreadyExists(LockboxError):
    """A unique name (tenant slug, user email) is already taken."""

    code = "already_exists"
    title = "Already exists"


class RateLimited(LockboxError):
    """Too many attempts (failed sign-ins, calls) in a window; try again after ``retry_after``."""

    code = "rate_limited"
    title = "Too many attempts"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = max(1, retry_after)


class StepUpRequired(LockboxError):
    """The person's sign-in is too old for this action (approve, revoke, policy, roles,
    second factors): they must prove who they are again, then repeat it. ``max_age`` is
    how old (in seconds) a sign-in may be. Only sessions get this; API tokens never do."""

    code = "step_up_required"
    title = "Confirm it's you"

    def __init__(self, message: str, *, max_age: int | None = None) -> None:
        super().__init__(message, max_age=max_age)
        self.max_age = max_age


class ChangePending(LockboxError):
    """Not applied yet: the change widens access and waits for a second tenant admin (four
    eyes). ``change_id`` names the pending change; the answer is 202 Accepted, not an error,
    where the caller asked for it (the API, the pages)."""

    code = "change_pending"
    title = "Waiting for a second admin"

    def __init__(self, message: str, *, change_id: str) -> None:
        super().__init__(message, change_id=change_id)
        self.change_id = change_id


class SignInRefused(AuthenticationFailed):
    """A sign-in that cannot go on, with the reason in words (``reason``: a stable code)."""

    code = "sign_in_refused"
    title = "Sign-in refused"

    def __init__(self, message: str, *, reason: str, email: str | None = None) -> None:
        super().__init__(message, reason=reason, email=email)
        self.reason = reason


class BrokenInvariant(Exception):
    """A bug: something the code guarantees did not hold. Not a refusal (the API answers 500).

    Raised explicitly instead of with ``assert``, which ``python -O`` strips: a check
    that guards behaviour must run in every build.
    """


def require(condition: bool, message: str) -> None:
    """Raise :class:`BrokenInvariant` unless ``condition`` holds."""
    if not condition:
        raise BrokenInvariant(message)


def present(value: _T | None, what: str) -> _T:
    """``value``, which the caller knows cannot be None here; a None is a bug, said plainly."""
    if value is None:
        raise BrokenInvariant(f"{what} is missing")
    return value
