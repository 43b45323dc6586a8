"""Stages, narrower approvals and extensions through the CLI (the local database)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.test_cli import (
    APPROVER,
    ENGINEER,
    MAILBOX,
    MANAGER,
    Cli,
    bootstrap,
    cli,  # noqa: F401 (the fixture)
    open_and_submit,
)


def test_stages_narrowing_and_more_time_through_the_cli(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    bootstrap(cli)
    cli("user", "create", "quinn@contoso.example", "--role", "approver", "--tenant", "contoso")
    admin = "ines@contoso.example"
    cli("user", "create", admin, "--role", "tenant_admin", "--tenant", "contoso")
    stages = tmp_path / "stages.json"
    stages.write_text(
        json.dumps(
            {
                "groups": {"officers": ["quinn@contoso.example"]},
                "stages": [
                    {"key": "approvers", "roles": ["approver"]},
                    {"key": "officer", "name": "Security officer", "group": "officers"},
                ],
            }
        ),
        encoding="utf-8",
    )
    policy = cli.json(
        "policy", "set", "contoso", "--stages-file", str(stages), "--max-extensions", "1", as_=admin
    )
    assert [s["key"] for s in policy["stages"]] == ["approvers", "officer"]
    assert policy["max_extensions"] == 1

    _, req_id = open_and_submit(cli)
    cli.json("request", "review", req_id, "--approve", as_=MANAGER)
    first = cli.json("request", "approve", req_id, "--window", "1h", as_=APPROVER)
    assert first["state"] == "pending_approval" and first["current_stage"] == "officer"
    assert first["access_window_seconds"] == 3600
    shown = cli("request", "show", req_id, as_=APPROVER)
    assert "Approval stages" in shown.out and "Security officer" in shown.out
    done = cli.json("request", "approve", req_id, as_="quinn@contoso.example")
    assert done["state"] == "approved"

    asked = cli.json(
        "request", "extend", req_id, "--by", "30m", "--reason", "one more check", as_=ENGINEER
    )
    assert asked["extension"]["by_seconds"] == 1800
    halfway = cli.json("request", "extension", "approve", req_id, as_=APPROVER)
    assert halfway["extension"]["current_stage"] == "officer"  # the same stages as the request
    extended = cli.json("request", "extension", "approve", req_id, as_="quinn@contoso.example")
    assert extended["extension"] is None and extended["extensions"] == 1
    refused = cli(
        "request", "extend", req_id, "--by", "30m", "--reason", "again", as_=ENGINEER, expect=None
    )
    assert refused.code != 0 and "already extended 1 time" in refused.err
    assert MAILBOX in json.dumps(done["resources"])


def test_delegations_through_the_cli(cli: Cli) -> None:  # noqa: F811
    bootstrap(cli)
    cli("user", "create", "quinn@contoso.example", "--role", "approver", "--tenant", "contoso")
    made = cli.json(
        "delegation",
        "add",
        "--to",
        "quinn@contoso.example",
        "--until",
        "7d",
        "--reason",
        "holiday",
        as_=APPROVER,
    )
    assert made["reason"] == "holiday" and made["revoked_at"] is None
    table = cli("delegation", "list", as_="quinn@contoso.example")
    assert made["id"] in table.out
    ended = cli.json("delegation", "revoke", made["id"], as_=APPROVER)
    assert ended["revoked_at"] is not None
    refused = cli("delegation", "add", "--to", APPROVER, "--until", "7d", as_=APPROVER, expect=None)
    assert refused.code != 0 and "someone else" in refused.err
