"""People by name and e-mail, for every adapter that shows who did something.

Records keep ids (stable, unambiguous); people read names. Adapters pass the ids
of objects the caller may already see (a request's requester and deciders, the
actors of audit records) and get back how to show each one: name and e-mail,
or what the system and the local operator are called.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from lockbox.service.app import Lockbox
from lockbox.store import tables as t

if TYPE_CHECKING:
    from lockbox.domain.audit import AuditRecord
    from lockbox.domain.request import AccessRequest


@dataclass(frozen=True)
class Person:
    id: str
    display_name: str
    email: str
    kind: str = "user"  # user | system | operator | unknown

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.display_name, "email": self.email or None}

    @property
    def label(self) -> str:
        """One line for text output: ``Paula <paula@contoso.example>``."""
        return f"{self.display_name} <{self.email}>" if self.email else self.display_name


SYSTEM = Person("system", "Lockbox (automatic)", "", "system")
OPERATOR = Person("operator", "Local operator", "", "operator")
_FIXED = {SYSTEM.id: SYSTEM, OPERATOR.id: OPERATOR}


def resolve(app: Lockbox, ids: Iterable[str | None]) -> dict[str, Person]:
    """Each id as a :class:`Person`; an id that names nobody stays visible as itself."""
    wanted = {i for i in ids if i}
    found: dict[str, Person] = {i: _FIXED[i] for i in wanted if i in _FIXED}
    lookup = sorted(wanted - found.keys())
    if lookup:
        u = t.users.c
        with app.read() as tx:
            for chunk in (lookup[i : i + 500] for i in range(0, len(lookup), 500)):
                rows = tx.conn.execute(select(u.id, u.display_name, u.email).where(u.id.in_(chunk)))
                for uid, name, email in rows:
                    found[uid] = Person(uid, name or email, email)
    for missing in wanted - found.keys():
        found[missing] = Person(missing, missing, "", "unknown")
    return found


def in_request(request: AccessRequest, history: Iterable[AuditRecord] = ()) -> set[str]:
    """Everyone a request page names: requester, reviewer, deciders, who ended it, history."""
    ids = {request.requester_id, request.reviewer_id or "", request.ended_by or ""}
    ids.update(d.actor_id for d in request.decisions)
    ids.update(d.on_behalf_of for d in request.decisions if d.on_behalf_of)
    ids.update(r.actor_id for r in history)
    ids.discard("")
    return ids


def in_records(records: Iterable[AuditRecord]) -> set[str]:
    return {r.actor_id for r in records}


def as_map(found: dict[str, Person]) -> dict[str, dict[str, Any]]:
    """JSON form for the API and the CLI: ``{id: {id, name, email}}``."""
    return {pid: person.as_dict() for pid, person in sorted(found.items())}
