"""How people prove who they are, as rules on plain values (no clock, no I/O).

* **Step-up.** What grants access (deciding a request, revoking access, changing the
  lockbox policy or someone's roles), and what weakens a person's own sign-in (removing
  a second factor, renewing recovery codes), needs a proof of presence younger than a
  few minutes when the person acts through an admin-center session. API tokens are not
  sessions: a token is a standing credential the person created for a script, and a
  step-up prompt could never be answered by it, so tokens are not subject to it.
* **Strong sign-in.** A password alone is weak; a password with a TOTP code or a
  recovery code, a passkey, or the organisation's single sign-on are strong. A tenant
  may require strong sign-in for the people who grant access (approvers, admins).
* **Roles from groups.** With single sign-on, the identity provider's groups decide a
  person's roles at every sign-in: removing someone from a group takes the role away
  the next time they sign in (and their step-up needs a new sign-in within minutes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Final

from lockbox.domain.errors import ValidationError
from lockbox.domain.roles import CUSTOMER_ROLES, PROVIDER_ROLES, Principal, Role

PASSWORD: Final = "password"
PASSWORD_TOTP: Final = "password+totp"
PASSWORD_RECOVERY: Final = "password+recovery_code"
PASSKEY: Final = "passkey"
SSO: Final = "sso"
METHODS: Final = frozenset({PASSWORD, PASSWORD_TOTP, PASSWORD_RECOVERY, PASSKEY, SSO})
STRONG: Final = frozenset({PASSWORD_TOTP, PASSWORD_RECOVERY, PASSKEY, SSO})

#: Roles whose holders must sign in strongly when their organisation asks for it.
GRANTING_ROLES: Final = frozenset(
    {Role.APPROVER, Role.TENANT_ADMIN, Role.MANAGER, Role.PROVIDER_ADMIN}
)
DEFAULT_STEP_UP: Final = timedelta(minutes=5)
MAX_GROUPS: Final = 200


def is_session(principal: Principal) -> bool:
    return bool(principal.credential and principal.credential.startswith("session:"))


def needs_step_up(principal: Principal, now: datetime, max_age: timedelta) -> bool:
    """Whether a session's proof of presence is too old (or unknown) for granting access."""
    if not is_session(principal):
        return False
    if principal.auth_time is None:
        return True
    return not (timedelta(0) <= now - principal.auth_time <= max_age)


def is_strong(method: str | None) -> bool:
    return method in STRONG


def must_be_strong(roles: Iterable[Role], required: bool) -> bool:
    """Whether a person with ``roles`` must sign in strongly under a rule that is ``required``."""
    return required and any(r in GRANTING_ROLES for r in roles)


def describe(method: str | None, provider: str | None) -> str:
    """How someone signed in, for audit records: "password + TOTP", "SSO (https://…)"."""
    words = {
        PASSWORD: "password",
        PASSWORD_TOTP: "password + TOTP",
        PASSWORD_RECOVERY: "password + recovery code",
        PASSKEY: "passkey",
        SSO: "single sign-on",
    }
    text = words.get(method or "", method or "unknown")
    return f"{text} ({provider})" if provider else text


def parse_role_map(
    value: object, *, customer: bool, field: str = "role_map"
) -> dict[str, list[str]]:
    """``{"group": ["approver"]}``: each group of the identity provider → Lockbox roles.

    A tenant's map may hand out only customer roles; the provider's only staff roles
    (never ``resource_service``, which is software, not a person).
    """
    if not isinstance(value, Mapping):
        raise ValidationError(field, "must map group names to lists of roles")
    if len(value) > MAX_GROUPS:
        raise ValidationError(field, f"at most {MAX_GROUPS} groups")
    allowed = CUSTOMER_ROLES if customer else PROVIDER_ROLES - {Role.RESOURCE_SERVICE}
    clean: dict[str, list[str]] = {}
    for group, roles in value.items():
        if not isinstance(group, str) or not group.strip() or len(group) > 200:
            raise ValidationError(field, "group names are 1-200 characters")
        if isinstance(roles, str):
            roles = [roles]
        if not isinstance(roles, list | tuple) or not roles:
            raise ValidationError(f"{field}.{group}", "must be a list of roles")
        picked: list[str] = []
        for role in roles:
            try:
                parsed = Role(role)
            except ValueError:
                raise ValidationError(f"{field}.{group}", f"unknown role {role!r}") from None
            if parsed not in allowed:
                raise ValidationError(
                    f"{field}.{group}", f"role {parsed.value!r} cannot be given here"
                )
            picked.append(parsed.value)
        clean[group.strip()] = sorted(set(picked))
    return clean


def roles_from_groups(groups: object, role_map: Mapping[str, Iterable[str]]) -> frozenset[Role]:
    """The roles the person's groups map to (groups not in the map give nothing)."""
    if isinstance(groups, str):
        groups = [groups]
    if not isinstance(groups, list | tuple):
        return frozenset()
    found: set[Role] = set()
    for group in groups:
        if isinstance(group, str):
            found.update(Role(r) for r in role_map.get(group, ()))
    return frozenset(found)
