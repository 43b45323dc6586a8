"""A client generated from the live schema works: the contract is one clients can build on.

``openapi-python-client`` (a CLI, run here in a temporary directory) generates a
Python package from ``/openapi.json``; the reference scenario then runs through that
package only, role by role, against the application in process: an engineer opens a
case and asks for access, a manager reviews it (with the ETag it read), the
customer's approver approves, the engineer obtains an access token, the mail store
checks the access, the engineer closes the request and the case. Errors arrive as
the generated ``Problem`` model, with their ``type``.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lockbox.api.app import create_app
from lockbox.service import tokens
from tests.conftest import World

VENV_BIN = Path(sys.executable).parent
PACKAGE = "lockbox_api_client"
MAILBOX = "exchange/mailbox/alice@contoso.com"


def _operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(tag, operation id, path) of every operation."""
    for path, item in schema["paths"].items():
        for operation in item.values():
            yield operation["tags"][0], operation["operationId"], path


def _module_name(operation_id: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation_id)


@pytest.fixture
def generated(world: World, tmp_path: Path) -> Iterator[tuple[Any, dict[str, Any]]]:
    """The generated package (imported) and the schema it was generated from."""
    schema = create_app(world.app).openapi()
    source = tmp_path / "openapi.json"
    source.write_text(json.dumps(schema))
    # JSON Lines (the audit exports) is text to a client: read it as such.
    settings = tmp_path / "generator.yaml"
    settings.write_text("content_type_overrides:\n  application/x-ndjson: text/plain\n")
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        [
            str(VENV_BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(source),
            "--meta",
            "none",
            "--output-path",
            str(tmp_path / PACKAGE),
            "--config",
            str(settings),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Warning" not in output, output  # every operation generated whole
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE), schema
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def _api(package: Any, tag: str, operation_id: str) -> Any:
    return importlib.import_module(f"{package.__name__}.api.{tag}.{_module_name(operation_id)}")


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_every_operation_has_a_readable_function(generated: tuple[Any, dict[str, Any]]) -> None:
    package, schema = generated
    for tag, operation_id, _path in _operations(schema):
        module = _api(package, tag.replace("-", "_"), operation_id)
        assert callable(module.sync_detailed), operation_id


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_reference_scenario_through_the_generated_client(
    generated: tuple[Any, dict[str, Any]], world: World
) -> None:
    package, _schema = generated
    models = importlib.import_module(f"{package.__name__}.models")
    app = create_app(world.app)

    def client(who: str) -> Any:
        principal = getattr(world, who)
        secret = tokens.create_token(world.app, principal, name=f"generated-{who}").secret
        transport = TestClient(
            app, base_url="http://testserver", headers={"Authorization": f"Bearer {secret}"}
        )
        made = package.AuthenticatedClient(base_url="http://testserver", token=secret)
        return made.set_httpx_client(transport)

    def call(tag: str, operation_id: str, who: Any, **kwargs: Any) -> Any:
        return _api(package, tag, operation_id).sync_detailed(client=who, **kwargs)

    engineer, manager = client("engineer"), client("manager")
    approver, service = client("contoso_approver"), client("service")

    r = call("cases", "openCase", engineer, body=models.CaseCreate(tenant="contoso", title="Sync"))
    assert r.status_code == 201, r.content
    case = r.parsed
    assert isinstance(case, models.CaseOut)
    assert r.headers["location"] == f"/v1/cases/{case.id}"

    body = models.RequestCreate(
        tenant="contoso",
        case_id=case.id,
        resources=[MAILBOX],
        access_level=models.RequestCreateAccessLevel.READ,
        justification="Inspect the sync state",
    )
    r = call("requests", "submitRequest", engineer, body=body)
    assert r.status_code == 201, r.content
    request_id = r.parsed.id
    assert r.parsed.state == "pending_review"

    # The manager reviews the version they read; a stale version is a 412 Problem.
    r = call("requests", "getRequest", manager, request_id=request_id)
    etag = r.headers["etag"]
    review = models.ReviewBody(decision=models.ReviewBodyDecision.APPROVE, comment="scope ok")
    r = call(
        "requests", "reviewRequest", manager, request_id=request_id, body=review, if_match='"9"'
    )
    assert r.status_code == 412
    assert isinstance(r.parsed, models.Problem)
    assert r.parsed.type_ == "urn:lockbox:problem:precondition_failed"
    r = call(
        "requests", "reviewRequest", manager, request_id=request_id, body=review, if_match=etag
    )
    assert r.status_code == 200, r.content
    assert r.parsed.state == "pending_approval"

    decision = models.DecideBody(decision=models.DecideBodyDecision.APPROVE, comment="today")
    r = call("requests", "decideRequest", approver, request_id=request_id, body=decision)
    assert r.status_code == 200, r.content
    assert r.parsed.state == "approved"

    token_body = models.TokenBody(request_id=request_id, audience="lockbox-resource")
    r = call("access", "issueAccessToken", engineer, body=token_body)
    assert r.status_code == 201, r.content
    assert r.parsed.request_id == request_id

    check = models.CheckBody(
        engineer=world.engineer.id,
        tenant="contoso",
        resource=MAILBOX,
        action=models.CheckBodyAction.READ,
        request_id=request_id,
        kid=r.parsed.kid,
    )
    r = call("access", "checkAccess", service, body=check)
    assert r.status_code == 200, r.content
    assert r.parsed.allowed is True

    r = call("requests", "closeRequest", engineer, request_id=request_id)
    assert r.status_code == 200, r.content
    assert r.parsed.state == "closed"
    r = call("access", "checkAccess", service, body=check)
    assert r.parsed.allowed is False

    r = call("cases", "closeCase", engineer, case_id=case.id)
    assert r.status_code == 200, r.content
    assert r.parsed.status == "closed"

    # Nobody else's: Fabrikam's approver does not learn the request exists.
    r = call("requests", "getRequest", client("fabrikam_approver"), request_id=request_id)
    assert r.status_code == 404
    assert r.parsed.type_ == "urn:lockbox:problem:not_found"
