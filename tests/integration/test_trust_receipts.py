"""Decision receipts (issue #12): one per decision, signed, verifiable offline with the CLI,
with ``python -m lockbox.verify`` and with plain openssl; any field changed fails."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lockbox.domain.audit import canonical_json
from lockbox.domain.errors import NotFound
from lockbox.domain.signing import b64, unb64
from lockbox.service import checkpoints, receipts, requests
from tests.conftest import World
from tests.integration.helpers import approved, pending_approval, set_policy, submit
from tests.integration.trust_helpers import chain_records

CLI = [sys.executable, "-m", "lockbox.cli.main"]


def _env(world: World) -> dict[str, str]:
    env = {**os.environ, "LOCKBOX_DATABASE_URL": world.app.db.url, "COLUMNS": "200"}
    env.pop("LOCKBOX_AS", None)
    env.pop("LOCKBOX_SERVER", None)
    return env


def _kinds(world: World, request_id: str) -> list[str]:
    return [r.kind for r in receipts.for_request(world.app, world.manager, request_id)]


def test_every_decision_has_a_receipt_naming_its_audit_record(world: World) -> None:
    req = approved(world)
    assert _kinds(world, req.id) == ["approve"]  # not the submit, not the forwarding review
    requests.revoke_request(world.app, world.contoso_approver, req.id, comment="enough")
    assert _kinds(world, req.id) == ["approve", "revoke"]
    denied = pending_approval(world)
    requests.decide_request(world.app, world.contoso_approver, denied.id, approve=False)
    assert _kinds(world, denied.id) == ["deny"]
    closed = approved(world)
    requests.close_request(world.app, world.engineer, closed.id)
    assert _kinds(world, closed.id) == ["approve"]  # closing is not a decision on access

    (first, revoked) = receipts.for_request(world.app, world.contoso_auditor, req.id)
    statement = first.statement
    records = {r.id: r for r in chain_records(world.app, world.contoso)}
    audit = statement["audit"]
    record = records[audit["id"]]
    assert (audit["chain"], audit["seq"], audit["hash"]) == (world.contoso, record.seq, record.hash)
    assert record.operation == "request.approve" and record.request_id == req.id
    assert statement["tenant"] == {"id": world.contoso, "slug": "contoso", "name": "Contoso Ltd"}
    assert statement["engineer"]["email"] == "erin@provider.test"
    assert statement["request"]["resources"] == ["exchange/mailbox/alice@contoso.com"]
    assert statement["request"]["access_level"] == "read"
    window = statement["request"]["access_window"]
    assert window["from"] and window["until"] and window["from"] < window["until"]
    decision = statement["decision"]
    assert decision["kind"] == "approve" and decision["basis"] == "customer"
    assert decision["by"]["email"] == "paula@contoso.test"
    assert revoked.statement["decision"]["kind"] == "revoke"
    assert revoked.statement["request"]["ended_at"] is not None


def test_a_managers_approval_with_the_lockbox_off_is_an_automatic_grant(world: World) -> None:
    set_policy(world, enabled=False)
    req = submit(world)
    requests.review_request(world.app, world.manager, req.id, approve=True)
    (found,) = receipts.for_request(world.app, world.contoso_auditor, req.id)
    decision = found.statement["decision"]
    assert (found.kind, decision["basis"]) == ("auto_approve", "lockbox_off")
    assert decision["by"]["email"] == "mark@provider.test"
    assert found.statement["request"]["state"] == "approved"


def test_receipts_are_as_visible_as_their_request(world: World) -> None:
    req = approved(world)
    (found,) = receipts.for_request(world.app, world.engineer, req.id)
    assert receipts.get_receipt(world.app, world.contoso_auditor, found.id).id == found.id
    for stranger in (world.fabrikam_auditor, world.engineer2):
        with pytest.raises(NotFound):
            receipts.get_receipt(world.app, stranger, found.id)
        with pytest.raises(NotFound):
            receipts.for_request(world.app, stranger, req.id)


@pytest.fixture
def saved(world: World, tmp_path: Path) -> tuple[Path, Path, dict[str, Any]]:
    """A real receipt downloaded with the CLI, and the published keys saved beside it."""
    req = approved(world)
    (found,) = receipts.for_request(world.app, world.engineer, req.id)
    receipt_file = tmp_path / "receipt.json"
    out = subprocess.run(
        [
            *CLI,
            "--as",
            "audrey@contoso.test",
            "receipt",
            "download",
            found.id,
            "-o",
            str(receipt_file),
        ],
        env=_env(world),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps(checkpoints.keys_document(world.app)))
    return receipt_file, keys_file, json.loads(receipt_file.read_text())


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if value is None:
        return "x"
    return str(value) + "x"


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        doc = doc[key]
    doc[path[-1]] = value


def test_the_cli_verifies_a_receipt_and_refuses_any_changed_field(
    world: World, saved: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    receipt_file, keys_file, document = saved
    for extra in ([], ["--keys", str(keys_file)]):
        ok = subprocess.run(
            [*CLI, "receipt", "verify", str(receipt_file), *extra],
            env=_env(world),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ok.returncode == 0 and ok.stdout.startswith("OK"), ok.stdout + ok.stderr
        assert "approve of req_" in ok.stdout and "paula@contoso.test" in ok.stdout
    statement = json.loads(unb64(document["payload"]))
    files = []
    for index, path in enumerate(_leaves(statement)):
        # The field changed in the signed payload (re-encoded canonically) ...
        forged = json.loads(json.dumps(document))
        changed = json.loads(json.dumps(statement))
        _set(changed, path, _changed(_get(statement, path)))
        forged["payload"] = b64(canonical_json(changed))
        forged["receipt"] = changed
        target = tmp_path / f"payload-{index}.json"
        target.write_text(json.dumps(forged))
        files.append(target)
        # ... and in the readable copy only.
        copy = json.loads(json.dumps(document))
        _set(copy["receipt"], path, _changed(_get(statement, path)))
        target = tmp_path / f"copy-{index}.json"
        target.write_text(json.dumps(copy))
        files.append(target)
    assert len(files) > 40
    out = subprocess.run(
        [*CLI, "--json", "receipt", "verify", *map(str, files), "--keys", str(keys_file)],
        env=_env(world),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1, out.stderr
    results = json.loads(out.stdout)
    assert len(results) == len(files) and not any(r["ok"] for r in results)
    problems = {r["problem"] for r in results}
    assert any("signature does not verify" in p for p in problems)
    assert "the readable receipt differs from the signed payload" in problems


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


def test_the_independent_verifier_agrees(
    saved: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    receipt_file, keys_file, document = saved
    command = [sys.executable, "-m", "lockbox.verify", "receipt", "--keys", str(keys_file)]
    ok = subprocess.run([*command, str(receipt_file)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("OK"), ok.stdout + ok.stderr
    document["receipt"]["decision"]["by"]["email"] = "someone@else.test"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))
    out = subprocess.run([*command, str(bad)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "the readable receipt differs from the signed payload" in out.stdout


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_plain_openssl_verifies_a_real_receipt(
    saved: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    """The exact commands of docs/audit.md, "Checking a signature with openssl"."""
    _receipt_file, keys_file, document = saved
    keys = {k["kid"]: k for k in json.loads(keys_file.read_text())["keys"]}
    pem = tmp_path / "key.pem"
    pem.write_text(keys[document["kid"]]["public_key_pem"])
    payload, signature = tmp_path / "payload.bin", tmp_path / "sig.bin"
    payload.write_bytes(unb64(document["payload"]))
    signature.write_bytes(unb64(document["signature"]))

    def openssl(data: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                "openssl",
                "pkeyutl",
                "-verify",
                "-pubin",
                "-inkey",
                str(pem),
                "-rawin",
                "-in",
                str(data),
                "-sigfile",
                str(signature),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )

    ok = openssl(payload)
    assert ok.returncode == 0 and "Signature Verified Successfully" in ok.stdout, ok.stderr
    # The readable statement is exactly what was signed.
    assert json.loads(payload.read_bytes()) == document["receipt"]
    # Any field changed: openssl refuses.
    statement = json.loads(payload.read_bytes())
    statement["request"]["access_level"] = "read_write"
    changed = tmp_path / "changed.bin"
    changed.write_bytes(canonical_json(statement))
    refused = openssl(changed)
    assert refused.returncode != 0
    assert "Signature Verification Failure" in refused.stdout + refused.stderr
