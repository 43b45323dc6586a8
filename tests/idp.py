"""Identity providers for the sign-in tests, on 127.0.0.1 only, each stopped by its test.

* :func:`mock_provider`: the real OpenID Connect provider of the ``oidc-provider-mock``
  package (Authlib on Flask), on a free port, driven through its own pages in the
  browser. People are set with ``PUT /users/<sub>`` (their claims: e-mail, groups…).
* :class:`CraftedProvider`: discovery, a key set and a token endpoint that answers with
  whatever ID token the test signs (with a test key): wrong issuer, audience, nonce,
  expired, future-dated, tampered… what a real provider would never send.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


@dataclass
class MockProvider:
    issuer: str

    def set_user(self, sub: str, **claims: Any) -> None:
        """Create or replace a person at the provider (``sub`` is what one types to sign in)."""
        answer = httpx.put(f"{self.issuer}/users/{sub}", json=claims, timeout=10)
        answer.raise_for_status()


@contextmanager
def mock_provider() -> Iterator[MockProvider]:
    """oidc-provider-mock on a free 127.0.0.1 port; the issuer is ``http://127.0.0.1:<port>``."""
    import oidc_provider_mock
    import werkzeug.serving

    app = oidc_provider_mock.app(require_nonce=True)
    server = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield MockProvider(f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


@dataclass
class CraftedProvider:
    """A provider whose token endpoint returns ``make_token(nonce)`` (set by the test)."""

    issuer: str = ""
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"}))
    make_token: Callable[[], str] | None = None
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def sign(self, claims: dict[str, Any], key: RSAKey | None = None) -> str:
        chosen = key or self.key
        return jwt.encode({"alg": "RS256", "kid": chosen.kid or "k1"}, claims, chosen)

    def app(self) -> Starlette:
        async def discovery(_: Request) -> JSONResponse:
            return JSONResponse(
                {
                    "issuer": self.issuer,
                    "authorization_endpoint": f"{self.issuer}/authorize",
                    "token_endpoint": f"{self.issuer}/token",
                    "jwks_uri": f"{self.issuer}/jwks",
                }
            )

        async def jwks(_: Request) -> JSONResponse:
            return JSONResponse(KeySet([self.key]).as_dict(private=False))

        async def token(request: Request) -> JSONResponse:
            form = await request.form()
            self.token_requests.append({k: str(v) for k, v in form.items()})
            if self.make_token is None:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            return JSONResponse(
                {"access_token": "at", "token_type": "Bearer", "id_token": self.make_token()}
            )

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/jwks", jwks),
                Route("/token", token, methods=["POST"]),
            ]
        )
