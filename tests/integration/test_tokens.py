"""API tokens at the service level: whose tokens, and what the operator must say."""

from __future__ import annotations

import pytest

from lockbox.domain.errors import AuthenticationFailed, ValidationError
from lockbox.domain.roles import Principal
from lockbox.service import tokens
from tests.conftest import World


def test_operator_must_name_the_owner(world: World) -> None:
    with pytest.raises(ValidationError) as excinfo:
        tokens.create_token(world.app, Principal.operator(), name="ci")
    assert excinfo.value.field == "user"
    with pytest.raises(ValidationError):
        tokens.list_tokens(world.app, Principal.operator())


def test_token_authenticates_its_owner_until_revoked(world: World) -> None:
    issued = tokens.create_token(world.app, world.contoso_auditor, name="script")
    assert tokens.authenticate(world.app, issued.secret).id == world.contoso_auditor.id
    assert [t.id for t in tokens.list_tokens(world.app, world.contoso_auditor)] == [issued.row.id]
    tokens.revoke_token(world.app, world.contoso_auditor, issued.row.id)
    with pytest.raises(AuthenticationFailed):
        tokens.authenticate(world.app, issued.secret)
