"""The policy page says the approval stages in words, to everyone who reads the policy."""

from __future__ import annotations

from lockbox.service import tenants
from tests.web.test_requests_pages import World, world

__all__ = ["world"]


def test_the_policy_page_lists_the_stages_and_their_people(world: World) -> None:
    admin = world.principal("CONTOSO_TENANT_ADMIN")
    tenants.change_policy(
        world.app,
        admin,
        "contoso",
        {
            "groups": {"security": ["ines@contoso.example"]},
            "stages": [
                {"key": "approvers", "name": "Approvers", "roles": ["approver"]},
                {
                    "key": "security",
                    "name": "Security officer",
                    "group": "security",
                    "condition": {"access_level": "read_write"},
                },
            ],
        },
    )
    for who in ("CONTOSO_TENANT_ADMIN", "CONTOSO_APPROVER"):
        page = world.client(who).get("/policy")
        assert page.status_code == 200
        assert "Approvers: 1 approval by an approver, for every request" in page.text
        assert "Security officer: 1 approval by a member of “security” (Ines)" in page.text
        assert "only for read_write access" in page.text
    assert "--stages-file" in world.client("CONTOSO_TENANT_ADMIN").get("/policy").text
    assert "--stages-file" not in world.client("CONTOSO_APPROVER").get("/policy").text
