"""The shape of a Lockbox access token, as every verifier must expect it.

The SDK's own copy of the server's ``lockbox.access.claims``, so verifying a
token needs nothing of the server. ``sdk/vectors/tokens.json`` pins this shape
down for verifiers in other languages.
"""

from __future__ import annotations

ALGORITHM = "EdDSA"
"""The only signature algorithm accepted (Ed25519); anything else is refused before a key is
looked up, so ``none`` or an HMAC keyed with the public key can never verify."""

TOKEN_TYPE = "lockbox-access+jwt"
"""The ``typ`` header Lockbox puts on access tokens (informative; not checked)."""

REQUIRED_CLAIMS = (
    "iss",
    "sub",
    "aud",
    "tenant_id",
    "request_id",
    "resources",
    "access_level",
    "iat",
    "nbf",
    "exp",
    "jti",
)

__all__ = ["ALGORITHM", "REQUIRED_CLAIMS", "TOKEN_TYPE"]
