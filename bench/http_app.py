"""The server of the HTTP benchmarks: Lockbox's own app plus a bare endpoint, in one process.

``python -m bench.http_app --port N`` serves ``create_app`` on the database named
by ``LOCKBOX_DATABASE_URL`` and adds ``POST /bench/bare`` to *this* app instance
only (never to ``src/``): it takes the same JSON body as ``/v1/access/check``,
validated by the same model and through the same middleware, in the same kind
of handler (a synchronous function run in the thread pool), and answers a
constant — so the ratio between the two is what the check itself costs
(authentication, the database, the decision, the audit record of a denial).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import uvicorn
from fastapi import FastAPI

from lockbox.api.app import create_app
from lockbox.api.routes_access import CheckBody
from lockbox.service.app import Lockbox
from lockbox.store.db import Database

BARE_ANSWER: dict[str, Any] = {
    "allowed": True,
    "reason": "approved",
    "request_id": None,
    "state": None,
    "access_level": None,
    "resources": [],
    "access_deadline": None,
    "checked_at": "2025-06-02T09:30:00.000000Z",
}


def build() -> FastAPI:
    app = create_app(Lockbox(Database(os.environ["LOCKBOX_DATABASE_URL"])))

    def bare(body: CheckBody) -> dict[str, Any]:
        return dict(BARE_ANSWER, resources=[body.resource])

    app.add_api_route("/bench/bare", bare, methods=["POST"], include_in_schema=False)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        build(),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()
