"""``lockbox audit checkpoint|keys``, ``lockbox audit verify --checkpoint/--export`` and
``lockbox receipt …``: evidence a customer keeps and checks without trusting the provider.

Locally on the database, or over the API when ``LOCKBOX_SERVER`` is set. Checking a
file (a receipt, an export) happens here, on the caller's machine, against the
published audit keys: ``--keys FILE`` (the saved ``/.well-known/lockbox-audit-keys.json``)
or, without it, the keys of the database or server in use. ``python -m
lockbox.verify`` does the same with no Lockbox code at all (docs/audit.md).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from lockbox.cli import output
from lockbox.cli.remote import api, is_remote, local, root
from lockbox.domain import receipts as receipt_rules
from lockbox.domain.errors import LockboxError, ValidationError
from lockbox.domain.signing import PublicKey, SignatureProblem, parse_instant
from lockbox.service import checkpoints, receipts, views

receipt_app = typer.Typer(
    help="Signed receipts of decisions on access (verifiable offline).", no_args_is_help=True
)

KeysOpt = Annotated[
    Path | None,
    typer.Option(
        "--keys",
        help="The published audit keys (a saved /.well-known/lockbox-audit-keys.json); "
        "default: those of the database or server in use.",
    ),
]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file.")]


def _q(value: str) -> str:
    return quote(value, safe="")


def read_json(path: Path, field: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValidationError(field, f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise ValidationError(field, f"{path} is not JSON") from None


def _write(data: Any, path: Path | None) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if path is None:
        sys.stdout.write(text)
    else:
        path.write_text(text, encoding="utf-8")
        output.err.print(f"written to {path}", markup=False)


# -- keys ----------------------------------------------------------------------------------------


def keys_document(ctx: typer.Context) -> dict[str, Any]:
    if is_remote(ctx):
        import httpx

        url = root(ctx).server.rstrip("/") + "/.well-known/lockbox-audit-keys.json"
        try:
            response = httpx.get(url, timeout=30)
        except httpx.HTTPError as exc:
            raise LockboxError(f"cannot reach the server: {exc}") from None
        if response.status_code != 200:
            raise LockboxError(f"the server answered {response.status_code} for its audit keys")
        found: dict[str, Any] = response.json()
        return found
    lockbox, _actor = local(ctx)
    return checkpoints.keys_document(lockbox)


def public_keys(document: Any) -> dict[str, PublicKey]:
    """The keys of an audit keys document, as the domain checks signatures with them."""
    import base64

    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValidationError("keys", "is not a lockbox.audit-keys document")
    keys: dict[str, PublicKey] = {}
    for entry in document["keys"]:
        try:
            raw = base64.urlsafe_b64decode(str(entry["x"]) + "==")
            until = entry.get("valid_until")
            keys[str(entry["kid"])] = PublicKey(
                kid=str(entry["kid"]),
                raw=raw,
                valid_from=parse_instant(entry["valid_from"]),
                valid_until=parse_instant(until) if until is not None else None,
            )
        except (KeyError, TypeError, ValueError):
            raise ValidationError("keys", "has a key entry that is not one") from None
    return keys


def _keys(ctx: typer.Context, path: Path | None) -> dict[str, PublicKey]:
    return public_keys(read_json(path, "keys") if path else keys_document(ctx))


def audit_keys(ctx: typer.Context, output_file: OutputOpt = None) -> None:
    """The published audit keys (current and retired, with validity): save them to verify
    checkpoints and receipts offline."""
    _write(keys_document(ctx), output_file)


# -- checkpoints --------------------------------------------------------------------------------


def audit_checkpoint(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Option(help="Tenant (slug or id), or provider.")],
    history: Annotated[
        bool, typer.Option("--history", help="List the checkpoints, newest first.")
    ] = False,
    issue: Annotated[
        bool, typer.Option("--issue", help="Sign the chain's head now, and print that.")
    ] = False,
    limit: Annotated[int, typer.Option(help="With --history: how many.")] = 50,
    output_file: OutputOpt = None,
) -> None:
    """Print the chain's latest signed checkpoint as JSON: the file to keep, outside Lockbox."""
    base = f"/v1/tenants/{_q(tenant)}/audit/checkpoints"
    if is_remote(ctx):
        if issue:
            item = api(ctx, "POST", base)
        else:
            page = api(ctx, "GET", base, params={"limit": limit})
            item = page["latest"]
            if history:
                _history(ctx, page["items"], output_file)
                return
    else:
        lockbox, actor = local(ctx)
        if issue:
            item = checkpoints.issue(lockbox, actor, tenant).as_dict()
        elif history:
            items, _next = checkpoints.history(lockbox, actor, tenant, limit=limit)
            _history(ctx, [v.as_dict() for v in items], output_file)
            return
        else:
            found = checkpoints.latest(lockbox, actor, tenant)
            item = found.as_dict() if found else None
    if item is None:
        raise LockboxError("this chain has no checkpoint yet (try --issue)")
    _write(item["document"], output_file)


def _history(ctx: typer.Context, items: list[dict[str, Any]], path: Path | None) -> None:
    if root(ctx).json or path is not None:
        _write(items, path)
        return
    output.table(
        "Checkpoints",
        ["seq", "hash", "at", "reason", "kid"],
        ([i["seq"], i["hash"], i["at"], i["reason"], i["kid"]] for i in items),
    )


def verify_reports(
    ctx: typer.Context,
    tenant: str | None,
    checkpoint_files: list[Path],
    export: Path | None,
    keys_file: Path | None,
) -> list[dict[str, Any]]:
    """``lockbox audit verify`` with ``--checkpoint`` and/or ``--export``: one report."""
    held = [read_json(p, "checkpoint") for p in checkpoint_files]
    if export is not None:
        keys = _keys(ctx, keys_file)
        try:
            with export.open(encoding="utf-8") as handle:
                report = checkpoints.verify_export(handle, held, keys, tenant=tenant)
        except OSError as exc:
            raise ValidationError(
                "export", f"cannot read {export}: {exc.strerror or exc}"
            ) from None
        return [views.chain_report(report)]
    if tenant is None:
        found = held[0].get("checkpoint") if held and isinstance(held[0], dict) else None
        tenant = found.get("tenant") if isinstance(found, dict) else None
        if not isinstance(tenant, str):
            raise ValidationError("tenant", "name the chain (--tenant) to verify against")
    if is_remote(ctx):
        body = {"checkpoints": held}
        return [api(ctx, "POST", f"/v1/tenants/{_q(tenant)}/audit/verify", json=body)]
    lockbox, actor = local(ctx)
    return [views.chain_report(checkpoints.verify_with_checkpoints(lockbox, actor, tenant, held))]


def signed_export(ctx: typer.Context, tenant: str) -> Iterator[str]:
    if not is_remote(ctx):
        lockbox, actor = local(ctx)
        return checkpoints.signed_export(lockbox, actor, tenant)
    import httpx

    from lockbox.cli.http_backend import error_from_problem

    settings = root(ctx)
    client = httpx.Client(
        base_url=settings.server.rstrip("/"),
        headers={"authorization": f"Bearer {settings.token}"},
        timeout=60,
    )
    response = client.send(
        client.build_request("GET", f"/v1/tenants/{_q(tenant)}/audit/signed-export"), stream=True
    )
    if response.status_code >= 400:
        response.read()
        client.close()
        try:
            body = response.json()
        except ValueError:
            body = {}
        raise error_from_problem(response.status_code, body)

    def chunks() -> Iterator[str]:
        try:
            yield from response.iter_text()
        finally:
            response.close()
            client.close()

    return chunks()


# -- receipts --------------------------------------------------------------------------------------


def _summary(item: dict[str, Any]) -> list[Any]:
    return [item["id"], item["kind"], item["at"], item.get("decided_by"), item.get("audit_seq")]


@receipt_app.command("list")
def receipt_list(ctx: typer.Context, request_id: str) -> None:
    """A request's signed receipts, oldest first."""
    if is_remote(ctx):
        items = api(ctx, "GET", f"/v1/requests/{_q(request_id)}/receipts")["items"]
    else:
        lockbox, actor = local(ctx)
        items = [
            {**r.summary(), "document": r.document()}
            for r in receipts.for_request(lockbox, actor, request_id)
        ]
    if root(ctx).json:
        output.emit_json(items)
        return
    output.table(
        "Receipts",
        ["id", "decision", "at", "decided by", "audit record"],
        (_summary(i) for i in items),
    )


def _document(ctx: typer.Context, receipt_id: str) -> dict[str, Any]:
    if is_remote(ctx):
        found: dict[str, Any] = api(ctx, "GET", f"/v1/receipts/{_q(receipt_id)}")
        return found
    lockbox, actor = local(ctx)
    return receipts.get_receipt(lockbox, actor, receipt_id).document()


@receipt_app.command("show")
def receipt_show(ctx: typer.Context, receipt_id: str) -> None:
    """What a receipt states (the signed statement, readable)."""
    document = _document(ctx, receipt_id)
    if root(ctx).json:
        output.emit_json(document)
        return
    statement = document["receipt"]
    decision, request = statement["decision"], statement["request"]
    window = request.get("access_window") or {}
    output.fields(
        {
            "receipt": statement["id"],
            "decision": f"{decision['kind']} ({decision['basis']})",
            "decided by": (decision.get("by") or {}).get("email")
            or (decision.get("by") or {}).get("id"),
            "decided at": decision["at"],
            "tenant": statement["tenant"].get("name"),
            "request": request["id"],
            "engineer": statement["engineer"].get("email") or statement["engineer"].get("id"),
            "resources": request["resources"],
            "access level": request["access_level"],
            "access window": f"{window.get('from') or '-'} to {window.get('until') or '-'}",
            "audit record": f"{statement['audit']['seq']} {statement['audit']['hash']}",
            "signed by": document["kid"],
        }
    )


@receipt_app.command("download")
def receipt_download(ctx: typer.Context, receipt_id: str, output_file: OutputOpt = None) -> None:
    """Save a receipt file (default ``receipt-<id>.json``): keep it, verify it offline."""
    document = _document(ctx, receipt_id)
    _write(document, output_file or Path(f"receipt-{receipt_id}.json"))


@receipt_app.command("verify")
def receipt_verify(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Receipt files.")],
    keys_file: KeysOpt = None,
) -> None:
    """Check receipt files against the published audit keys; exit 1 if any does not verify."""
    keys = _keys(ctx, keys_file)
    results = []
    for path in files:
        try:
            found = receipt_rules.from_document(read_json(path, "receipt"), keys)
        except SignatureProblem as exc:
            results.append({"file": str(path), "ok": False, "problem": str(exc)})
            continue
        results.append({"file": str(path), "ok": True, **found.summary()})
    if root(ctx).json:
        output.emit_json(results)
    else:
        for r in results:
            if r["ok"]:
                output.out.print(
                    f"OK    {r['file']}: {r['kind']} of {r['request_id']} by "
                    f"{r['decided_by_email'] or r['decided_by']} "
                    f"at {r['at']} (audit record {r['audit_seq']})",
                    markup=False,
                )
            else:
                output.out.print(f"FAIL  {r['file']}: {r['problem']}", markup=False)
    if not all(r["ok"] for r in results):
        raise typer.Exit(1)
