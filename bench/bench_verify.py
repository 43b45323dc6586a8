"""2. A fresh access token verified and matched by the SDK vs. a bare Ed25519 verification.

``TokenVerifier.verify`` (header, key look-up in the cached JWK Set, signature,
audience, issuer, required claims, expiry) followed by ``claims.denies`` must
cost little more than the signature itself: ≥ 0.8× the rate of
``Ed25519PublicKey.verify`` over the same signed bytes, measured alternately
in the same run. Every token is distinct (a fresh ``jti``, engineer and
resources), as each engineer's token is when a service first sees it.
"""

from __future__ import annotations

import base64
import random
from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bench.common import CLOCK, CPU_NOTE, Context, interleaved, progress
from bench.data import NOW, covered, ident, resources_for
from bench.report import Row, verdict
from lockbox.access import keys, tokens
from lockbox.sdk.verify import TokenVerifier

NAME = "verify"
TARGET_RATIO = 0.8


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def run(ctx: Context) -> list[Row]:
    rng = random.Random(ctx.seed)
    count = ctx.size(3_000, 500)
    rounds = ctx.size(9, 3)
    key = keys.generate(NOW)
    private = key.private_key()
    public: Ed25519PublicKey = private.public_key()
    document = keys.jwks([key])
    progress(f"verify: minting {count:,} tokens")
    minted: list[tuple[str, str, str]] = []
    for i in range(count):
        domain = f"tenant-{rng.randrange(5000):05d}.example"
        resources = resources_for(rng, domain)
        token = tokens.mint(
            key,
            issuer="lockbox",
            audience="mailstore",
            engineer_id=ident(rng, "usr"),
            tenant_id=ident(rng, "ten"),
            tenant_slug=domain.split(".")[0],
            request_id=ident(rng, "req"),
            resources=resources,
            access_level="read" if i % 4 else "read_write",
            now=NOW,
            ttl=timedelta(minutes=5),
            access_deadline=NOW + timedelta(hours=4),
        ).token
        minted.append((token, covered(rng, resources[0], domain), "read"))
    signed = []
    for token, _, _ in minted:
        head, payload, signature = token.split(".")
        signed.append((_b64(signature), f"{head}.{payload}".encode("ascii")))

    verifier = TokenVerifier(
        audience="mailstore",
        fetch_jwks=lambda: document,
        clock=lambda: NOW + timedelta(seconds=10),
        cache_size=0,  # fresh tokens: every one parsed and its signature checked, every round
    )
    verifier.refresh()
    denied = 0

    def sdk() -> None:
        nonlocal denied
        denied = 0
        verify = verifier.verify
        for token, resource, action in minted:
            if verify(token).denies(resource, action) is not None:
                denied += 1

    def bare() -> None:
        check = public.verify
        for signature, data in signed:
            check(signature, data)

    sdk()  # warm up (and prove every token verifies)
    bare()
    subject, baseline = interleaved(sdk, bare, rounds, clock=CLOCK)
    verifier.close()
    sdk_rate, bare_rate = count / subject, count / baseline
    return [
        Row(
            NAME,
            "TokenVerifier.verify + claims.denies",
            f"{count:,} distinct tokens x {rounds} rounds",
            sdk_rate,
            "/s",
            baseline=bare_rate,
            baseline_label="Ed25519PublicKey.verify of the same signed bytes (cryptography)",
            target=f">= {TARGET_RATIO}x baseline",
            result=verdict(sdk_rate / bare_rate >= TARGET_RATIO),
            notes=[
                CPU_NOTE,
                f"{denied} of {count:,} matches denied (expected 0)",
                "the verified-token cache is off: each call is a fresh verification",
            ],
        )
    ]
