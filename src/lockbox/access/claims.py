"""The shape of a Lockbox access token, shared by the issuer and every verifier.

Kept free of database and key-storage imports so the SDK can use it in a
resource service without pulling in the server's store.
"""

from __future__ import annotations

ALGORITHM = "EdDSA"
TOKEN_TYPE = "lockbox-access+jwt"
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
