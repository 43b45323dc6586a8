"""``/v1/keys`` and the commands that used to need the database: keys and outbox stats.

``lockbox keys list|rotate|retire`` and ``lockbox outbox stats`` work over the API
when ``LOCKBOX_SERVER`` is set; here the CLI's HTTP calls go to an in-process
TestClient, so nothing leaves the process.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from lockbox.cli import main as cli_main
from tests.api.conftest import Api

SERVER = "http://lockbox.test"


def test_provider_admins_manage_keys_over_the_api(api: Api) -> None:
    listed = api.call("provider_admin", "GET", "/v1/keys")
    assert listed.status_code == 200, listed.text
    first = api.call("provider_admin", "POST", "/v1/keys/rotate", json={"purpose": "access"})
    assert first.status_code == 201, first.text
    before = {k["kid"] for k in api.call("provider_admin", "GET", "/v1/keys").json()["items"]}
    rotated = api.call("provider_admin", "POST", "/v1/keys/rotate")
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert new["status"] == "active" and new["kid"] not in before
    assert "private" not in json.dumps(new).lower() and '"d"' not in json.dumps(new)
    keys = {k["kid"]: k for k in api.call("provider_admin", "GET", "/v1/keys").json()["items"]}
    assert keys[new["kid"]]["status"] == "active"
    assert keys[first.json()["kid"]]["status"] == "published"  # verifies, no longer signs
    retired = api.call("provider_admin", "POST", f"/v1/keys/{first.json()['kid']}/retire")
    assert retired.status_code == 200, retired.text
    assert retired.json()["status"] == "retired"
    # The signing key cannot be retired: rotate first.
    refused = api.call("provider_admin", "POST", f"/v1/keys/{new['kid']}/retire")
    assert refused.status_code == 409
    assert refused.json()["type"] == "urn:lockbox:problem:invalid_state"
    missing = api.call("provider_admin", "POST", "/v1/keys/no-such-kid/retire")
    assert missing.status_code == 404
    bad = api.call("provider_admin", "POST", "/v1/keys/rotate", json={"purpose": "nope"})
    assert bad.status_code == 422


@pytest.mark.parametrize("who", ["contoso_admin", "manager", "engineer", "service"])
def test_nobody_else_may_see_or_change_keys(api: Api, who: str) -> None:
    for method, url in (
        ("GET", "/v1/keys"),
        ("POST", "/v1/keys/rotate"),
        ("POST", "/v1/keys/some-kid/retire"),
    ):
        r = api.call(who, method, url)
        assert r.status_code in (403, 404), (who, url, r.status_code)
    assert api.call(None, "GET", "/v1/keys").status_code == 401


def _over_the_api(
    api: Api,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    who: str,
    *args: str,
) -> tuple[int, str, list[str]]:
    """Run ``lockbox --json ARGS`` with LOCKBOX_SERVER set; its HTTP calls reach ``api``."""
    seen: list[str] = []

    def request(method: str, url: str, **kw: Any) -> httpx.Response:
        seen.append(f"{method} {url.removeprefix(SERVER)}")
        kw.pop("timeout", None)
        response: httpx.Response = api.client.request(method, url.removeprefix(SERVER), **kw)
        return response

    monkeypatch.setattr(httpx, "request", request)
    monkeypatch.setenv("LOCKBOX_SERVER", SERVER)
    monkeypatch.setenv("LOCKBOX_TOKEN", api.tokens[who])
    monkeypatch.delenv("LOCKBOX_AS", raising=False)
    monkeypatch.setattr(sys, "argv", ["lockbox", "--json", *args])
    capsys.readouterr()
    try:
        cli_main.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out + captured.err, seen


def test_keys_commands_work_with_lockbox_server_set(
    api: Api, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if api.world.app.db.dialect != "sqlite":
        pytest.skip("the commands only talk HTTP here; one backend is enough")
    code, out, seen = _over_the_api(api, monkeypatch, capsys, "provider_admin", "keys", "rotate")
    assert code == 0, out
    assert seen == ["POST /v1/keys/rotate"]
    older = json.loads(out)["kid"]
    code, out, _ = _over_the_api(api, monkeypatch, capsys, "provider_admin", "keys", "rotate")
    kid = json.loads(out)["kid"]
    code, out, seen = _over_the_api(api, monkeypatch, capsys, "provider_admin", "keys", "list")
    assert code == 0, out
    assert seen == ["GET /v1/keys"]
    assert kid in {k["kid"] for k in json.loads(out)}
    code, out, seen = _over_the_api(
        api, monkeypatch, capsys, "provider_admin", "keys", "retire", older
    )
    assert code == 0, out
    assert seen == [f"POST /v1/keys/{older}/retire"]
    assert json.loads(out)["status"] == "retired"
    # Refusals come back as the same one-line errors and exit codes as locally.
    code, out, _ = _over_the_api(api, monkeypatch, capsys, "engineer", "keys", "list")
    assert code in (3, 4) and out.startswith("error:"), out


def test_outbox_stats_works_with_lockbox_server_set(
    api: Api, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if api.world.app.db.dialect != "sqlite":
        pytest.skip("the commands only talk HTTP here; one backend is enough")
    code, out, seen = _over_the_api(api, monkeypatch, capsys, "provider_admin", "outbox", "stats")
    assert seen == ["GET /v1/outbox/stats"]
    assert code == 0, out
    counts = json.loads(out)
    assert set(counts) >= {"pending", "sent", "failed", "skipped"}


def test_the_client_is_a_plain_testclient(api: Api) -> None:
    assert isinstance(api.client, TestClient)  # what _over_the_api relies on
