"""``python -m examples.mailstore [--host 127.0.0.1] [--port 8100]``."""

from __future__ import annotations

import argparse
import os

import uvicorn

from examples.mailstore.app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description="Example mail store protected by Lockbox.")
    parser.add_argument("--host", default=os.environ.get("MAILSTORE_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("MAILSTORE_PORT", "8100")))
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args()
    uvicorn.run(
        create_app(),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        server_header=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
