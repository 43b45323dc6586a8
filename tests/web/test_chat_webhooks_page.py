"""The Webhooks page offers Slack and Microsoft Teams: a choice of format with a hint, the
format in the list, and, for a chat webhook, no signing secret after adding it (there is
none: the page says why, and that the address is the secret, shown masked)."""

from __future__ import annotations

import html
import re

import httpx
from fastapi.testclient import TestClient

from lockbox.service import webhooks
from tests.web.test_requests_pages import World, _token, world

__all__ = ["world"]

TOKEN = "Xk3j9FqL2mN8pR4sT6vW1yZ0"
URL = f"https://hooks.contoso.example/services/T0001ABCD/B0002EFGH/{TOKEN}"
SHOWN = "https://hooks.contoso.example/services/T0001ABCD/B0002EFGH/Xk3j…"


def _add(admin: TestClient, fmt: str | None, url: str = URL) -> httpx.Response:
    form = admin.get("/webhooks")
    data = {"csrf_token": _token(form.text), "url": url, "mode": "all"}
    if fmt is not None:
        data["format"] = fmt
    return admin.post("/webhooks", data=data)


def test_the_form_offers_every_format_with_a_hint(world: World) -> None:
    page = world.client("CONTOSO_TENANT_ADMIN").get("/webhooks").text
    group = re.search(
        r'<div class="field[^"]*" role="radiogroup"[^>]*>.*?</div>\n</div>', page, re.S
    )
    assert group is not None, page
    assert 'aria-labelledby="format-label"' in group.group(0)
    assert 'aria-describedby="f-format-hint"' in group.group(0)
    radios = re.findall(
        r'<input type="radio" id="([^"]+)" name="format" value="([^"]+)"( checked)?>', page
    )
    assert radios == [
        ("f-format", "standard", " checked"),  # the default, and the error summary's target
        ("f-format-slack", "slack", ""),
        ("f-format-teams", "teams", ""),
    ]
    for value, _, _ in radios:
        assert f'<label for="{value}">' in page
    assert "contain no links" in page and "their address is the secret" in page


def test_a_slack_webhook_shows_no_secret_and_its_format(world: World) -> None:
    admin = world.client("CONTOSO_TENANT_ADMIN")
    added = _add(admin, "slack")
    assert added.status_code == 201, added.text[:2000]
    text = html.unescape(added.text)
    assert 'data-testid="webhook-secret"' not in text and "whsec_" not in text
    assert 'data-testid="webhook-no-secret"' in text
    assert "Slack does not check signatures" in text
    assert "The address is the secret." in text
    assert f"The webhook for {SHOWN} is added." in text
    assert TOKEN not in text

    listing = admin.get("/webhooks").text
    formats = re.findall(r'data-testid="webhook-format">([^<]+)<', listing)
    assert formats == ["Slack message"]
    assert TOKEN not in listing
    (hook,) = webhooks.list_webhooks(
        world.app, world.principal("CONTOSO_TENANT_ADMIN"), tenant="contoso"
    )
    assert hook.format == "slack" and hook.url == URL
    confirm = admin.get(f"/webhooks?confirm={hook.id}").text
    assert "Remove the webhook in Slack too" in confirm and TOKEN not in confirm


def test_teams_and_standard_webhooks_side_by_side(world: World) -> None:
    admin = world.client("CONTOSO_TENANT_ADMIN")
    teams = _add(admin, "teams", "https://contoso.webhook.office.com/webhookb2/x/IncomingWebhook/y")
    assert teams.status_code == 201
    assert "Microsoft Teams does not check signatures" in html.unescape(teams.text)
    standard = _add(admin, None, "https://hooks.contoso.example/lockbox")
    assert standard.status_code == 201
    assert 'data-testid="webhook-secret">whsec_' in standard.text
    listing = admin.get("/webhooks").text
    assert sorted(re.findall(r'data-testid="webhook-format">([^<]+)<', listing)) == [
        "Microsoft Teams message",
        "Signed JSON events",
    ]


def test_an_unknown_format_is_refused_at_the_field(world: World) -> None:
    admin = world.client("CONTOSO_TENANT_ADMIN")
    refused = _add(admin, "discord")
    assert refused.status_code == 422
    text = html.unescape(refused.text)
    assert '<a href="#f-format">Choose what Lockbox sends' in text
    assert 'id="f-format-error"' in text
    assert 'aria-describedby="f-format-hint f-format-error"' in text
    assert (
        webhooks.list_webhooks(world.app, world.principal("CONTOSO_TENANT_ADMIN"), tenant="contoso")
        == []
    )
