"""Who may still approve a request: the people its current stage admits.

One answer for every place that needs it, so the request page, the API, the CLI and
the "approval needed" e-mails can never name different people: the active users of the
request's tenant who hold one of the stage's roles or belong to its group (as the
tenant's policy says now), minus those who already decided.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lockbox.domain.lifecycle import State
from lockbox.domain.request import AccessRequest, deciders
from lockbox.domain.user import User
from lockbox.service import delegations
from lockbox.store import repositories as repo

if TYPE_CHECKING:  # the transaction's module plans notifications, which ask this one
    from lockbox.service.app import Tx


def eligible(tx: Tx, request: AccessRequest) -> list[User]:
    """The people who may approve ``request`` now, by e-mail address: its current stage
    while it waits for the customer, or its extension's while one waits; else nobody."""
    if request.state is State.PENDING_APPROVAL:
        stage, decided = request.current_stage(), deciders(request.decisions)
    elif request.state is State.APPROVED and request.extension is not None:
        extension = request.extension
        stage, decided = extension.current_stage(), deciders(extension.approvals)
    else:
        return []
    if stage is None:
        return []
    found: dict[str, User] = {}
    if stage.roles:
        roles = sorted(stage.roles)
        for holder in repo.users_with_roles(tx.conn, roles, tenant_id=request.tenant_id):
            found[holder.id] = holder
    tenant = tx.tenant(request.tenant_id)
    if stage.group is not None and tenant is not None:
        for user_id in tenant.policy.group_members(stage.group):
            user = tx.user(user_id)
            if user is not None and user.active and user.tenant_id == request.tenant_id:
                found[user.id] = user
    asked = {uid: u for uid, u in found.items() if uid not in decided}
    # Whoever holds the approvals of someone asked is asked too (a delegation).
    for holders in delegations.delegates_of(tx, sorted(asked), tx.now).values():
        for holder_id in holders:
            delegate = tx.user(holder_id)
            if (
                delegate is not None
                and delegate.active
                and delegate.tenant_id == request.tenant_id
                and holder_id not in decided
            ):
                asked[holder_id] = delegate
    return sorted(asked.values(), key=lambda u: u.email)
