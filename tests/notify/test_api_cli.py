"""The outbox and webhook API routes and CLI commands (thin shells over the services)."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from lockbox.api.app import create_app
from lockbox.cli.main import app as cli
from lockbox.domain.roles import Principal
from lockbox.notify.dispatcher import Dispatcher
from lockbox.service import tokens
from tests.conftest import World
from tests.notify.helpers import rows, smtp_settings, submit


class DownMailer:
    def send(self, message: object) -> None:
        raise ConnectionRefusedError("down")

    def close(self) -> None:
        pass


def bearer(world: World, who: Principal) -> dict[str, str]:
    secret = tokens.create_token(world.app, who).secret
    return {"authorization": f"Bearer {secret}"}


def park_everything(world: World) -> None:
    submit(world.app, world.engineer)
    Dispatcher(
        world.app, smtp_settings(1, outbox_max_attempts=1), mailer=DownMailer()
    ).dispatch_due()


def test_outbox_api(world: World) -> None:
    park_everything(world)
    client = TestClient(create_app(world.app))
    admin = bearer(world, world.provider_admin)
    page = client.get("/v1/outbox", params={"status": "failed"}, headers=admin)
    assert page.status_code == 200
    items = page.json()["items"]
    assert len(items) == 2 and {i["status"] for i in items} == {"failed"}
    assert all("down" in i["last_error"] for i in items)
    one = client.get(f"/v1/outbox/{items[0]['id']}", headers=admin).json()
    assert one["payload"]["tenant_name"] == "Contoso Ltd"
    assert client.get("/v1/outbox", params={"status": "bogus"}, headers=admin).status_code == 422
    for who in (world.contoso_admin, world.manager):
        headers = bearer(world, who)
        assert client.get("/v1/outbox", headers=headers).status_code == 404
        assert client.post(f"/v1/outbox/{items[0]['id']}/retry", headers=headers).status_code == 404
    assert client.get("/v1/outbox").status_code == 401
    retried = client.post(f"/v1/outbox/{items[0]['id']}/retry", headers=admin)
    assert retried.status_code == 200 and retried.json()["status"] == "pending"
    assert client.post(f"/v1/outbox/{items[0]['id']}/retry", headers=admin).status_code == 409


def test_webhooks_api(world: World) -> None:
    client = TestClient(create_app(world.app))
    admin = bearer(world, world.contoso_admin)
    created = client.post(
        "/v1/webhooks", json={"url": "https://hooks.contoso.example/l"}, headers=admin
    )
    assert created.status_code == 201
    body = created.json()
    assert body["secret"].startswith("whsec_") and body["tenant_id"] == world.contoso
    listed = client.get("/v1/webhooks", headers=admin).json()["items"]
    assert [h["id"] for h in listed] == [body["id"]] and "secret" not in listed[0]
    bad = client.post("/v1/webhooks", json={"url": "http://hooks.example/"}, headers=admin)
    assert bad.status_code == 422 and "url" in bad.text
    other = bearer(world, world.fabrikam_admin)
    assert client.delete(f"/v1/webhooks/{body['id']}", headers=other).status_code == 404
    assert client.delete(f"/v1/webhooks/{body['id']}", headers=admin).status_code == 204
    assert client.get("/v1/webhooks", headers=admin).json()["items"] == []


def test_outbox_cli(world: World, tmp_path: Path) -> None:
    if world.app.db.dialect != "sqlite":
        return  # the CLI reads the database URL; one backend is enough here
    park_everything(world)
    env = {"LOCKBOX_DATABASE_URL": world.app.db.url, "COLUMNS": "200"}
    runner = CliRunner()
    result = runner.invoke(cli, ["--json", "outbox", "list", "--status", "failed"], env=env)
    assert result.exit_code == 0, result.output
    items = json.loads(result.output)["items"]
    assert len(items) == 2
    result = runner.invoke(cli, ["--json", "outbox", "retry", items[0]["id"]], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["status"] == "pending"
    assert {r.id for r in rows(world.app, "pending")} == {items[0]["id"]}
    result = runner.invoke(
        cli, ["--as", "ines@contoso.test", "outbox", "list"], env=env, standalone_mode=False
    )
    assert result.exit_code != 0
    result = runner.invoke(
        cli,
        ["--json", "--as", "ines@contoso.test", "webhook", "create", "https://h.example/x"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["secret"].startswith("whsec_")
