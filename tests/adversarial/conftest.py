"""The API fixtures (a TestClient, a token per role) for the adversarial tests."""

from __future__ import annotations

from tests.api.conftest import api, client

__all__ = ["api", "client"]
