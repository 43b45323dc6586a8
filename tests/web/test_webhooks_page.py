"""The tenant's webhooks page never shows a credential that a receiver put into its URL.

Receivers often take their secret in the address itself (``?token=…``, Slack's
``/services/T…/B…/<token>``): the page shows every address through
``webhooks.display_url``, in the list, the confirmation, the messages, and even in the
answer to the form that added it (the person typed it, but someone may be looking).
"""

from __future__ import annotations

import html
import re

from lockbox.service import webhooks
from tests.web.test_requests_pages import World, _token, world

__all__ = ["world"]

TOKEN = "Xk3j9FqL2mN8pR4sT6vW1yZ0"
QUERY_SECRET = "s3cr3t-value-9"
URL = f"https://hooks.contoso.example/services/T0001ABCD/{TOKEN}?token={QUERY_SECRET}&team=ops"
SHOWN = "https://hooks.contoso.example/services/T0001ABCD/Xk3j…?token=…&team=ops"


def _no_secret(html: str) -> None:
    assert TOKEN not in html
    assert QUERY_SECRET not in html


def test_webhook_urls_are_masked_on_every_page_of_the_webhooks_section(world: World) -> None:
    assert webhooks.display_url(URL) == SHOWN
    admin = world.client("CONTOSO_TENANT_ADMIN")
    form = admin.get("/webhooks")
    added = admin.post(
        "/webhooks", data={"csrf_token": _token(form.text), "url": URL, "mode": "all"}
    )
    assert added.status_code == 201, added.text[:2000]
    # The answer that shows the signing secret once shows the address masked.
    assert 'data-testid="webhook-secret"' in added.text
    assert f"The webhook for {SHOWN} is added." in html.unescape(added.text)
    _no_secret(added.text)

    listing = admin.get("/webhooks")
    shown = re.findall(r'data-testid="webhook-url">([^<]+)<', listing.text)
    assert [html.unescape(u) for u in shown] == [SHOWN]
    _no_secret(listing.text)

    (hook,) = webhooks.list_webhooks(
        world.app, world.principal("CONTOSO_TENANT_ADMIN"), tenant="contoso"
    )
    assert hook.url == URL  # stored whole: deliveries need it
    confirm = admin.get(f"/webhooks?confirm={hook.id}")
    assert f'Lockbox stops calling <span class="code">{SHOWN}</span>' in html.unescape(confirm.text)
    _no_secret(confirm.text)

    deleted = admin.post(f"/webhooks/{hook.id}/delete", data={"csrf_token": _token(confirm.text)})
    assert deleted.status_code == 200 and deleted.url.path == "/webhooks"
    assert f"The webhook for {SHOWN} is deleted" in html.unescape(deleted.text)
    _no_secret(deleted.text)
