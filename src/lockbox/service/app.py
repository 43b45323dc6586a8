"""The application context handed to every use case, and its transaction helper."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

from lockbox.clock import Clock, SystemClock
from lockbox.domain import authn
from lockbox.domain.audit import PROVIDER_CHAIN, AuditRecord
from lockbox.domain.case import SupportCase
from lockbox.domain.errors import Conflict, ValidationError
from lockbox.domain.ids import new_id
from lockbox.domain.request import Change
from lockbox.domain.roles import ActorKind, Principal
from lockbox.domain.tenant import Tenant
from lockbox.domain.user import User
from lockbox.service import grant_feed, notifications, signing
from lockbox.store import checkpoints as checkpoint_store
from lockbox.store import repositories as repo
from lockbox.store.db import Database
from lockbox.store.outbox import active_webhooks

log = logging.getLogger("lockbox")
_T = TypeVar("_T")

# PostgreSQL SQLSTATEs that mean "lost a race", not "bug": serialization failure, deadlock.
_RACE_SQLSTATES = {"40001", "40P01"}


class DenialSink(Protocol):
    """Takes denied checks to audit later (:class:`lockbox.service.denials.DenialRecorder`)."""

    def record(self, denial: Any) -> None: ...


@dataclass
class Lockbox:
    """Everything a use case needs from the outside world: the database and the clock."""

    db: Database
    clock: Clock = field(default_factory=SystemClock)
    #: Where a server sends denied checks to be audited in batches; None: written at once.
    denials: DenialSink | None = None

    def now(self) -> datetime:
        return self.clock.now()

    @contextmanager
    def tx(self) -> Iterator[Tx]:
        """One write transaction; database race errors surface as :class:`Conflict`."""
        try:
            with self.db.write() as conn:
                yield Tx(conn=conn, now=self.clock.now())
        except IntegrityError as exc:
            if _is_unique_violation(exc):
                raise Conflict("a concurrent change won; reload and try again") from exc
            raise
        except DBAPIError as exc:
            sqlstate = getattr(exc.orig, "sqlstate", None)
            if sqlstate in _RACE_SQLSTATES:
                if sqlstate == "40P01":
                    # Locks are taken in one documented order, so a deadlock is a bug to fix,
                    # even though the caller only sees an ordinary conflict.
                    log.error("database deadlock (40P01): the lock order was broken somewhere")
                raise Conflict("a concurrent change won; reload and try again") from exc
            raise

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self.db.read() as conn:
            yield Tx(conn=conn, now=self.clock.now())


def _is_unique_violation(exc: IntegrityError) -> bool:
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return sqlstate == "23505" or "UNIQUE constraint failed" in str(exc.orig)


@dataclass
class Tx:
    """A transaction in progress, with the time every change in it is dated."""

    conn: Connection
    now: datetime
    _seen: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    # Read-through lookups for the rows one change consults several times (its
    # tenant, case and people). Only for reading: code that changes one of these
    # rows in this transaction reads it through the repository instead.

    def tenant(self, tenant_id: str) -> Tenant | None:
        return self._memo("tenant", tenant_id, repo.get_tenant)

    def case(self, case_id: str) -> SupportCase | None:
        return self._memo("case", case_id, repo.get_case)

    def user(self, user_id: str) -> User | None:
        return self._memo("user", user_id, repo.get_user)

    def webhooks(self, tenant_id: str | None) -> list[dict[str, Any]]:
        """Active endpoints hearing about ``tenant_id`` (its own and the provider's)."""
        return self._memo("webhooks", tenant_id or "", lambda c, k: active_webhooks(c, k or None))

    def remember(self, kind: str, key: str, value: object) -> None:
        """A row this transaction already read (and, if locked, still holds)."""
        self._seen[(kind, key)] = value

    def cached(self, kind: str, key: str, load: Callable[[Connection, str], _T]) -> _T:
        """``load(conn, key)`` once per transaction (the audit key it signs with, say)."""
        return self._memo(kind, key, load)

    def _memo(self, kind: str, key: str, load: Callable[[Connection, str], _T]) -> _T:
        if (kind, key) not in self._seen:
            self._seen[(kind, key)] = load(self.conn, key)
        value: _T = self._seen[(kind, key)]
        return value

    def audit(
        self,
        *,
        tenant_id: str,
        actor: Principal,
        operation: str,
        request_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditRecord:
        details = dict(details or {})
        if actor.credential and actor.kind is ActorKind.USER:
            details.setdefault("credential", actor.credential)
            if actor.auth_method is not None:  # a session: how the person signed in
                details.setdefault(
                    "authenticated_by", authn.describe(actor.auth_method, actor.auth_provider)
                )
        record = AuditRecord(
            id=new_id("audit"),
            tenant_id=tenant_id,
            seq=0,
            at=self.now,
            actor_id=actor.id,
            actor_kind=actor.kind.value,
            operation=operation,
            request_id=request_id,
            details=details,
        )
        try:
            return repo.append_audit(self.conn, record)
        except ValidationError:
            # The provider's chain is registered by migration 0005; a database emptied since
            # gets it back here (only while it has no records).
            if tenant_id != PROVIDER_CHAIN or not checkpoint_store.create_provider_head(self.conn):
                raise
            return repo.append_audit(self.conn, record)

    def record(self, change: Change) -> AuditRecord:
        """Audit a request transition and queue its notifications, in this transaction.

        Every transition also gets a signed checkpoint of its chain, and a decision a
        signed receipt (:mod:`lockbox.service.signing`), committed with it.
        """
        details = dict(change.details)
        details["from"] = change.source.value if change.source else None
        details["to"] = change.target.value
        signing.before_record(self)  # the audit key's lock comes before the audit head
        record = self.audit(
            tenant_id=change.request.tenant_id,
            actor=change.actor,
            operation=change.operation,
            request_id=change.request.id,
            details=details,
        )
        notifications.plan(self, change)
        signing.after_record(self, change, record)
        grant_feed.on_change(self, change)  # last: the feed head is the last lock taken
        return record
