"""Enforcement support: Ed25519 signing keys, signed access tokens and the JWKS document.

Pure helpers plus the signing-key store; the use cases that decide *whether*
a token may be issued or an access allowed live in :mod:`lockbox.service.access`.
"""
