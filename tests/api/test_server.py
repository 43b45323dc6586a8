"""Against a real ``lockbox serve`` process on a free 127.0.0.1 port: the API over the
network, and the CLI in ``--server`` mode. The server picks its own free port (``--port 0``)
and the test reads it from the startup line, so nothing waits on a timer."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from lockbox.service import cases, tokens
from tests.conftest import World

LOCKBOX = str(Path(sys.executable).with_name("lockbox"))
MAILBOX = "exchange/mailbox/alice@contoso.com"


@dataclass
class Server:
    url: str
    env: dict[str, str]
    tokens: dict[str, str]
    clock_file: Path


@pytest.fixture
def server(world: World, tmp_path: Path) -> Iterator[Server]:
    clock_file = tmp_path / "clock-offset"
    clock_file.write_text("0")
    env = {
        **os.environ,
        "LOCKBOX_DATABASE_URL": world.app.db.url,
        "LOCKBOX_TEST_CLOCK_FILE": str(clock_file),
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    env.pop("LOCKBOX_SERVER", None)
    env.pop("LOCKBOX_TOKEN", None)
    proc = subprocess.Popen(
        [LOCKBOX, "serve", "--host", "127.0.0.1", "--port", "0", "--no-migrate"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    lines: list[str] = []
    url = None
    for line in proc.stderr:  # blocks until the server says where it listens (or exits)
        lines.append(line)
        match = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", line)
        if match:
            url = match.group(1)
            break
    if url is None:
        proc.kill()
        pytest.fail("server did not start:\n" + "".join(lines))
    drain = threading.Thread(
        target=lambda: [lines.append(x) for x in proc.stderr or []], daemon=True
    )
    drain.start()
    issued = {
        name: tokens.create_token(world.app, getattr(world, name), name="server").secret
        for name in (
            "engineer",
            "manager",
            "contoso_approver",
            "fabrikam_approver",
            "contoso_auditor",
        )
    }
    try:
        yield Server(url, env, issued, clock_file)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        drain.join(timeout=5)
        assert not any("Traceback" in x for x in lines), "".join(lines)


def test_real_server_end_to_end(server: Server, world: World) -> None:
    def h(who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {server.tokens[who]}"}

    with httpx.Client(base_url=server.url, timeout=30) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        assert c.get("/readyz").json() == {"status": "ready"}
        spec = c.get("/openapi.json").json()
        assert "/v1/requests/{request_id}/decide" in spec["paths"]
        assert c.get("/v1/me").status_code == 401
        assert c.get("/v1/me", headers=h("engineer")).json()["email"] == "erin@provider.test"

        case = c.post("/v1/cases", headers=h("engineer"), json={"tenant": "contoso", "title": "t"})
        assert case.status_code == 201, case.text
        body = {
            "tenant": "contoso",
            "case_id": case.json()["id"],
            "resources": [MAILBOX],
            "justification": "over the wire",
        }
        r = c.post("/v1/requests", headers=h("engineer"), json=body)
        assert r.status_code == 201, r.text
        rid = r.json()["id"]
        r = c.post(
            f"/v1/requests/{rid}/review",
            headers={**h("manager"), "If-Match": '"1"'},
            json={"decision": "approve"},
        )
        assert r.status_code == 200 and r.json()["state"] == "pending_approval"
        assert c.get(f"/v1/requests/{rid}", headers=h("fabrikam_approver")).status_code == 404
        r = c.post(
            f"/v1/requests/{rid}/decide",
            headers=h("contoso_approver"),
            json={"decision": "approve"},
        )
        assert r.json()["state"] == "approved"

        # The server's clock moves (test clock file): the access window is over, no sweeper ran.
        server.clock_file.write_text(str(5 * 3600))
        assert c.get(f"/v1/requests/{rid}", headers=h("engineer")).json()["state"] == "access_ended"

        with c.stream("GET", "/v1/tenants/contoso/audit/export", headers=h("contoso_auditor")) as s:
            assert s.status_code == 200
            lines = [line for line in s.iter_lines() if line]
        assert any('"request.approve"' in line for line in lines)


def _cli(server: Server, token: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(server.env)
    env.pop("LOCKBOX_DATABASE_URL")  # the client has no database: everything goes over HTTP
    env["LOCKBOX_SERVER"] = server.url
    if token is not None:
        env["LOCKBOX_TOKEN"] = token
    return subprocess.run(
        [LOCKBOX, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_cli_server_mode(server: Server, world: World) -> None:
    import json

    case = cases.open_case(world.app, world.engineer, tenant="contoso", title="cli")
    eng, mgr = server.tokens["engineer"], server.tokens["manager"]

    r = _cli(
        server,
        eng,
        "--json",
        "request",
        "submit",
        "--tenant",
        "contoso",
        "--case",
        case.id,
        "--resource",
        MAILBOX,
        "--justification",
        "from the CLI",
    )
    assert r.returncode == 0, r.stderr
    rid = json.loads(r.stdout)["id"]

    r = _cli(server, mgr, "request", "review", rid, "--approve", "--comment", "ok")
    assert r.returncode == 0, r.stderr
    assert "pending_approval" in r.stdout

    r = _cli(server, eng, "--json", "request", "list", "--state", "pending_approval")
    assert [i["id"] for i in json.loads(r.stdout)["items"]] == [rid]

    # Errors: the same one-line messages and exit codes as in local mode.
    r = _cli(server, server.tokens["fabrikam_approver"], "request", "show", rid)
    assert r.returncode == 3 and r.stderr.strip() == "error: access request not found"
    r = _cli(server, server.tokens["contoso_approver"], "request", "revoke", rid)
    assert r.returncode == 5 and r.stderr.startswith("error: cannot revoke")
    r = _cli(server, eng, "request", "review", rid, "--approve")
    assert r.returncode == 4, r.stderr
    r = _cli(server, "lbx_wrong", "tenant", "list")
    assert r.returncode == 4 and "invalid, expired or revoked token" in r.stderr
    r = _cli(
        server,
        eng,
        "request",
        "submit",
        "--tenant",
        "contoso",
        "--case",
        case.id,
        "--resource",
        "a//b",
        "--justification",
        "x",
    )
    assert r.returncode == 2 and "resources[0]" in r.stderr
    r = _cli(server, None, "tenant", "list")
    assert r.returncode == 2 and "LOCKBOX_TOKEN" in r.stderr

    r = _cli(server, server.tokens["contoso_auditor"], "audit", "verify", "--tenant", "contoso")
    assert r.returncode == 0 and r.stdout.startswith("OK")
