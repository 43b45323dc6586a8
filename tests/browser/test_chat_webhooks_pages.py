"""A Slack webhook added in a browser: the format is a labelled choice, the answer shows no
secret (and says why), and the list names the format; every page passes axe, fits a phone
and is photographed (var/screenshots/tenant-webhooks-slack-*.png)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lockbox.sdk.webhooks import SECRET_PREFIX
from lockbox.service import webhooks
from tests.browser.site import Site, signed_in
from tests.browser.test_tenant_pages import check_page, submit

if TYPE_CHECKING:
    from playwright.sync_api import Browser

TOKEN = "Xk3j9FqL2mN8pR4sT6vW1yZ0"
URL = f"https://hooks.contoso.example/services/T0001ABCD/B0002EFGH/{TOKEN}"
SHOWN = "https://hooks.contoso.example/services/T0001ABCD/B0002EFGH/Xk3j…"


def test_a_slack_webhook_is_added_without_a_secret(browser: Browser, site: Site) -> None:
    with signed_in(browser, site, "CONTOSO_TENANT_ADMIN") as who:
        page = who.page
        who.goto("/webhooks")
        assert page.get_by_label("Signed JSON events").is_checked()  # the default
        page.get_by_label("Endpoint address").fill(URL)
        page.get_by_label("Slack message").check()
        assert submit(page, "Add webhook") == 201
        main = page.locator("main").inner_text()
        assert "There is no signing secret to copy" in main
        assert "The address is the secret." in main
        assert page.get_by_test_id("webhook-secret").count() == 0
        assert TOKEN not in page.content() and SECRET_PREFIX not in page.content()
        row = page.locator("tbody tr").filter(has_text=SHOWN)
        assert "Slack message" in row.inner_text()
        check_page(who, "tenant-webhooks-slack-created", 201)

        page.get_by_role("link", name=f"Delete the webhook for {SHOWN}").click()
        assert "Remove the webhook in Slack too" in page.locator("#confirm-delete").inner_text()
        check_page(who, "tenant-webhooks-slack-confirm-delete")
    admin = site.principal("CONTOSO_TENANT_ADMIN")
    (hook,) = webhooks.list_webhooks(site.app, admin, tenant="contoso")
    assert hook.format == "slack" and hook.url == URL
