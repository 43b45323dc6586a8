"""The admin center's part of issue #12: a "Download receipt" link on the request page and
the signed checkpoint on the audit log page, each downloading the file to keep."""

from __future__ import annotations

from lockbox.service import checkpoints
from lockbox.verify import checkpoint, load_keys, receipt
from tests.web.test_requests_pages import World, world

__all__ = ["world"]


def test_the_request_page_offers_the_receipt_of_each_decision(world: World) -> None:
    rid = world.approved()
    paula = world.client("CONTOSO_APPROVER")
    page = paula.get(f"/requests/{rid}")
    assert page.status_code == 200
    assert "Signed receipts" in page.text and "Download receipt" in page.text
    start = page.text.index(f'href="/requests/{rid}/receipts/')
    link = page.text[start + 6 : page.text.index('"', start + 6)]
    download = paula.get(link)
    assert download.status_code == 200, download.text
    assert download.headers["content-disposition"].startswith('attachment; filename="receipt-rct_')
    keys = load_keys(checkpoints.keys_document(world.app))
    statement = receipt(download.json(), keys)
    assert statement["request"]["id"] == rid and statement["decision"]["kind"] == "approve"
    # Another tenant's people get the same "not found" as for the request itself.
    assert world.client("FABRIKAM_APPROVER").get(link).status_code == 404
    assert paula.get(link.replace(rid, world.submit())).status_code == 404  # wrong request


def test_the_audit_page_shows_and_downloads_the_signed_checkpoint(world: World) -> None:
    world.approved()
    auditor = world.client("CONTOSO_AUDITOR")
    page = auditor.get("/audit")
    assert page.status_code == 200
    assert "Signed checkpoint" in page.text and 'href="/audit/checkpoint.json"' in page.text
    download = auditor.get("/audit/checkpoint.json")
    assert download.status_code == 200
    found = checkpoint(download.json(), load_keys(checkpoints.keys_document(world.app)))
    assert f">{found.seq}<" in page.text and found.hash in page.text
