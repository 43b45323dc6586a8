"""The OpenAPI contract stays true: it is derived from the code, and these tests keep the
derivation honest.

* every operation has a short camelCase ``operationId`` and a tag;
* every operation documents the refusals its shape and its declarations imply
  (:mod:`lockbox.api.contract`), each as ``application/problem+json`` with the one
  shared ``Problem`` schema; FastAPI's own 422 shape appears nowhere;
* the matrix of every role against every endpoint answers only documented statuses;
* ``OPTIONS`` and 405 carry an ``Allow`` that lists every method of the path;
* time parameters take RFC 3339 only; malformed ids are 422 naming the parameter.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lockbox.api import contract, params, problems
from lockbox.api.app import create_app
from lockbox.api.contract import Problem
from lockbox.domain import errors, ids
from lockbox.service import tokens
from tests.api.conftest import Api, auth
from tests.api.matrix import ENDPOINTS, RELATIONS, ROLE_PRINCIPAL, Ctx, relation_target
from tests.api.test_schemathesis import IN_PROGRESS, STATE_RULES
from tests.conftest import World

PROBLEM = "application/problem+json"
METHODS = {"get", "put", "post", "patch", "delete"}
OPERATION_ID = re.compile(r"^[a-z][a-zA-Z0-9]{2,40}$")
#: Every time parameter of the API, by operation: each must be the shared ``Instant``.
TIME_PARAMETERS = {
    "listRequests": ("created_after", "created_before"),
    "queryAudit": ("since", "until"),
}
SQLITE = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


@pytest.fixture
def asgi(world: World) -> FastAPI:
    return create_app(world.app)


@pytest.fixture
def schema(asgi: FastAPI) -> dict[str, Any]:
    return asgi.openapi()


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def documented(schema: dict[str, Any], method: str, url: str) -> set[int]:
    """The statuses the operation that ``url`` reaches documents."""
    path = url.split("?", 1)[0]
    for template, item in schema["paths"].items():
        regex = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(regex, path) and method.lower() in item:
            return {int(s) for s in item[method.lower()]["responses"]}
    raise AssertionError(f"{method} {url} reaches no documented operation")


@SQLITE
def test_every_operation_has_an_id_a_tag_and_a_summary(schema: dict[str, Any]) -> None:
    seen: dict[str, str] = {}
    for method, path, operation in operations(schema):
        label = f"{method.upper()} {path}"
        operation_id = operation.get("operationId", "")
        assert OPERATION_ID.match(operation_id), f"{label}: operationId {operation_id!r}"
        assert operation_id not in seen, f"{label} and {seen[operation_id]}: {operation_id}"
        seen[operation_id] = label
        assert operation.get("tags"), f"{label} has no tag"
        assert operation.get("summary"), f"{label} has no summary"
    for name in (*STATE_RULES, *IN_PROGRESS):
        assert name in seen, f"test_schemathesis names {name}, which is no operation"


@SQLITE
def test_every_operation_documents_its_derived_refusals_as_problems(
    asgi: FastAPI, schema: dict[str, Any]
) -> None:
    failures = []
    for route in contract.routes_of(asgi):
        if not route.include_in_schema:
            continue
        methods = sorted(route.methods)
        wanted = contract.refusals(route.path_format, route.endpoint, methods, route.dependant)
        statuses = {problems.status_of(kind) for kind in wanted}
        for method in methods:
            answers = schema["paths"][route.path_format][method.lower()]["responses"]
            missing = statuses - {int(s) for s in answers}
            if missing:
                failures.append(f"{method} {route.path_format}: {sorted(missing)} undocumented")
            for status, answer in answers.items():
                if int(status) < 400 or (route.path_format, status) == ("/readyz", "503"):
                    continue
                content = answer.get("content", {})
                if set(content) != {PROBLEM}:
                    failures.append(f"{method} {route.path_format} {status}: {sorted(content)}")
                elif content[PROBLEM]["schema"] != {"$ref": contract.PROBLEM_REF}:
                    failures.append(f"{method} {route.path_format} {status}: not the Problem")
    assert not failures, "\n".join(failures)
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert "Problem" in schema["components"]["schemas"]


@SQLITE
def test_the_shape_of_a_route_decides_its_refusals(schema: dict[str, Any]) -> None:
    def answers(method: str, path: str) -> set[int]:
        return {int(s) for s in schema["paths"][path][method]["responses"]}

    # authenticated: 401/403/404; input: 422; body: 413; If-Match: 412; a write: 409
    assert answers("post", "/v1/requests/{request_id}/decide") >= {
        401,
        403,
        404,
        409,
        412,
        413,
        422,
    }
    assert answers("get", "/v1/requests/{request_id}") >= {401, 404, 422}
    assert 409 not in answers("get", "/v1/requests/{request_id}")
    assert 413 not in answers("get", "/v1/requests")
    assert answers("get", "/healthz") == {200}
    assert answers("post", "/v1/password-reset") >= {401, 409, 413, 422, 429}
    assert 403 not in answers("post", "/v1/password-reset")
    # the readiness probe answers its own 503 body, not a problem
    assert answers("get", "/readyz") == {200, 503}


def test_the_problem_schema_holds_every_field_the_api_sends() -> None:
    samples = [
        problems.from_domain(errors.ValidationError("audience", "audience: audience: is wrong")),
        problems.from_domain(errors.InvalidTransition("no", state="closed")),
        problems.from_domain(errors.Conflict("lost", state="approved", version=3)),
        problems.from_domain(problems.PreconditionFailed("old", state="approved", version=3)),
        problems.from_domain(errors.AlreadyExists("taken", field="slug")),
        problems.from_domain(errors.StepUpRequired("again", max_age=300)),
        problems.from_domain(errors.RateLimited("slow down", retry_after=7)),
        problems.from_domain(errors.AuthenticationFailed("who?")),
    ]
    fields = set(Problem.model_fields)
    for response in samples:
        assert response.media_type == PROBLEM
        body = Problem.model_validate_json(bytes(response.body))
        sent = set(body.model_dump(exclude_unset=True)) | set(body.model_extra or {})
        assert sent <= fields, sent - fields
    # A message never repeats the field the problem names beside it.
    first = Problem.model_validate_json(bytes(samples[0].body))
    assert first.errors is not None
    assert first.errors[0].message == "is wrong"
    assert first.detail == "audience: is wrong"
    assert samples[-1].headers["www-authenticate"] == "Bearer"
    assert samples[-2].headers["retry-after"] == "7"


def test_every_error_family_has_a_status() -> None:
    unmapped = [
        kind.__name__
        for kind in vars(errors).values()
        if isinstance(kind, type)
        and issubclass(kind, errors.LockboxError)
        and kind is not errors.LockboxError
        and problems.status_of(kind) == 400
    ]
    # A family without a status would answer 400, which no operation documents.
    assert unmapped == []


@SQLITE
def test_the_matrix_answers_only_documented_statuses(world: World, schema: dict[str, Any]) -> None:
    client = TestClient(create_app(world.app), raise_server_exceptions=False)
    ctx = Ctx(world)
    secrets = {
        role: tokens.create_token(world.app, getattr(world, name), name="contract").secret
        for role, name in ROLE_PRINCIPAL.items()
    }
    failures = []
    for ep in ENDPOINTS:
        for role, name in ROLE_PRINCIPAL.items():
            principal = getattr(world, name)
            for relation in RELATIONS:
                tenant_id, owner = relation_target(world, role, principal, relation)
                prepared = ep.prepare(ctx, tenant_id, owner)
                kwargs: dict[str, Any] = {"headers": auth(secrets[role])}
                if prepared.json is not None:
                    kwargs["json"] = prepared.json
                r = client.request(prepared.method, prepared.url, **kwargs)
                if r.status_code not in documented(schema, prepared.method, prepared.url):
                    failures.append(
                        f"{role.value} {prepared.method} {prepared.url}: {r.status_code}"
                    )
                if r.status_code >= 400 and not r.headers["content-type"].startswith(PROBLEM):
                    failures.append(f"{role.value} {prepared.method} {prepared.url}: not a problem")
    assert not failures, "\n".join(failures)


@SQLITE
def test_options_and_405_list_every_method_of_the_path(
    asgi: FastAPI, schema: dict[str, Any], api: Api
) -> None:
    client = TestClient(asgi)
    for path, item in schema["paths"].items():
        url = re.sub(r"\{[^}]+\}", "x", path)
        declared = {m.upper() for m in item if m in METHODS}
        r = client.options(url)
        assert r.status_code == 204, (path, r.status_code)
        assert set(r.headers["allow"].split(", ")) == declared | {"OPTIONS"}, (path, r.headers)
        unused = sorted({"GET", "PUT", "POST", "PATCH", "DELETE"} - declared)
        if unused:
            r = client.request(unused[0], url, headers=api.as_("provider_admin"))
            assert r.status_code == 405, (unused[0], path, r.status_code)
            assert r.headers["content-type"].startswith(PROBLEM)
            assert set(r.headers["allow"].split(", ")) == declared | {"OPTIONS"}, (path, r.headers)
    assert client.options("/v1/no-such-thing").status_code == 404


@SQLITE
def test_time_parameters_take_rfc3339_only(schema: dict[str, Any], api: Api) -> None:
    by_id = {op["operationId"]: op for _m, _p, op in operations(schema)}
    for operation_id, names in TIME_PARAMETERS.items():
        for parameter in by_id[operation_id]["parameters"]:
            if parameter["name"] in names:
                shapes = parameter["schema"].get("anyOf", [parameter["schema"]])
                assert {"type": "string", "format": "date-time"}.items() <= shapes[0].items()
    for bad in (
        "0000-01-01T00:00:00Z",
        "9999-12-31T23:59:59-23:59",
        "0.5",
        "1700000000",
        "2026-01-05",
        "2026-01-05T09:00:00",
        "yesterday",
        "2026-02-30T00:00:00Z",
    ):
        r = api.call("engineer", "GET", "/v1/requests", params={"created_before": bad})
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["errors"][0]["field"] == "created_before"
        r = api.call("contoso_auditor", "GET", "/v1/tenants/contoso/audit", params={"since": bad})
        assert r.status_code == 422, (bad, r.text)
    for good in (
        "2026-01-05T09:00:00Z",
        "2026-01-05t09:00:00.123456789z",
        "2026-01-05T09:00:00+05:30",
        "2016-12-31T23:59:60Z",
        "0001-01-01T00:00:00-01:00",
    ):
        r = api.call("engineer", "GET", "/v1/requests", params={"created_after": good})
        assert r.status_code == 200, (good, r.text)


def test_instants_parse_to_utc() -> None:
    assert (
        params.parse_instant("2026-01-05T10:30:00+01:30").isoformat() == "2026-01-05T09:00:00+00:00"
    )
    assert params.parse_instant("2016-12-31T23:59:60Z").microsecond == 999_999
    with pytest.raises(ValueError, match="RFC 3339"):
        params.parse_instant(0.5)


def test_id_patterns_are_the_shapes_new_ids_have() -> None:
    for kind in ids.PREFIXES:
        made = ids.new_id(kind)
        assert re.fullmatch(params.id_pattern(kind), made), (kind, made)
        assert ids._ID_RE.fullmatch(made)
    assert not re.fullmatch(params.id_pattern("request"), "req_short")
    assert not re.fullmatch(params.id_pattern("request"), "case_" + "z" * 26)
    assert re.fullmatch(params.TENANT_REF, "contoso")
    assert re.fullmatch(params.USER_REF, "paula@contoso.test")
    assert not re.fullmatch(params.USER_REF, "a/b@contoso.test")


@SQLITE
def test_malformed_ids_are_422_naming_the_parameter(api: Api) -> None:
    cases = [
        ("GET", "/v1/requests/req_short", "request_id"),
        ("POST", "/v1/requests/case_zzzzzzzzzzzzzzzzzzzzzzzzzz/cancel", "request_id"),
        ("GET", "/v1/cases/case_1", "case_id"),
        ("POST", "/v1/tokens/tok_1/revoke", "token_id"),
        ("GET", "/v1/webhooks/whk_1", "webhook_id"),
        ("GET", "/v1/outbox/msg_1", "message_id"),
        ("GET", "/v1/tenants/Contoso_Ltd", "tenant"),
        ("GET", "/v1/users/not-an-address", "user"),
    ]
    for method, url, name in cases:
        r = api.call("provider_admin", method, url)
        assert r.status_code == 422, (url, r.text)
        body = r.json()
        assert [e["field"] for e in body["errors"]] == [name], body
        assert body["errors"][0]["message"].startswith("is not a"), body
    missing = "/v1/requests/req_" + "z" * 26
    assert api.call("provider_admin", "GET", missing).status_code == 404


@SQLITE
def test_a_tenant_admin_adds_people_to_their_own_tenant_without_naming_it(api: Api) -> None:
    r = api.call(
        "contoso_admin",
        "POST",
        "/v1/users",
        json={"email": "new@contoso.test", "roles": ["auditor"]},
    )
    assert r.status_code == 201, r.text
    assert r.json()["tenant_id"] == api.world.contoso
    r = api.call(
        "provider_admin",
        "POST",
        "/v1/users",
        json={"email": "c@contoso.test", "roles": ["auditor"]},
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "tenant"


def test_outbox_statuses_are_the_stores() -> None:
    from typing import get_args

    from lockbox.api.routes_outbox import OutboxStatus
    from lockbox.api.schemas import OutboxStats
    from lockbox.store.outbox import STATUSES

    assert set(get_args(OutboxStatus)) == set(STATUSES)
    assert set(OutboxStats.model_fields) == set(STATUSES)


@SQLITE
def test_outbox_stats_for_the_provider_admin_only(api: Api) -> None:
    r = api.call("provider_admin", "GET", "/v1/outbox/stats")
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"pending", "sent", "failed", "skipped"}
    assert all(isinstance(v, int) for v in r.json().values())
    assert api.call("contoso_admin", "GET", "/v1/outbox/stats").status_code == 404


def test_body_examples_are_valid_bodies() -> None:
    from pydantic import BaseModel

    from lockbox.api import routes_access, routes_webhooks, schemas

    for module in (schemas, routes_access, routes_webhooks):
        for model in vars(module).values():
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                continue
            extra = model.model_config.get("json_schema_extra")
            examples = extra.get("examples") if isinstance(extra, dict) else None
            if model.model_config.get("extra") == "forbid" and isinstance(examples, list):
                for example in examples:
                    model.model_validate(example)
